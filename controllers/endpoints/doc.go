// Package endpoints owns the Endpoints controller: for every Service with
// a selector it keeps an Endpoints object of the same name listing the
// matching pods — ready ones under subsets[].addresses, the others under
// notReadyAddresses — with each service port's targetPort resolved per
// pod (a named targetPort may map to different container ports on
// different pods, which puts those pods in different subsets).
//
// Services without a selector are left alone: their Endpoints belong to
// whoever wrote them. The controller does not program any data path; the
// proxy reads what it writes.
package endpoints
