// Package events owns how controllers record their decisions as core/v1
// Event objects (the ones `kubectl describe` and `kubectl get events`
// show): a Recorder that controllers call, and a Broadcaster that writes
// the events to the API server in the background, folding repeats of the
// same event into one object with a growing count.
//
// Recording never blocks a controller and never fails it: events are
// best-effort, as in Kubernetes. The package must not read informers or
// decide anything itself.
package events
