// Package encryption owns encryption at rest of values stored in etcd.
//
// It provides an AES-256-GCM implementation of storage.Transformer and the
// helper that creates or loads the key file. The etcd key of each value is
// bound into the ciphertext as additional authenticated data, so a value
// copied under a different key fails to decrypt instead of silently
// surfacing as another object.
//
// It does not decide which resources are encrypted (the API server wiring
// does) and never talks to etcd itself.
package encryption
