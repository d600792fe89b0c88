// Package workqueue owns the rate-limited queue of string keys that every
// minik8s controller drains with its workers.
//
// The queue is level-triggered by design: it carries object keys
// ("namespace/name"), never objects or events, so a burst of changes to one
// object collapses into a single reconcile of its latest state. Its rules:
//
//   - Add of a key that is already waiting is a no-op (dedupe).
//   - A key handed out by Get is "processing" until Done; re-adding it meanwhile
//     marks it dirty and it is queued again on Done, so two workers never work
//     on the same key at once and no change is lost.
//   - AddAfter delays a key; AddRateLimited delays it by a per-key exponential
//     backoff that Forget resets.
//
// The package must not know about API objects, informers or HTTP; it is
// plain concurrency and time.
package workqueue
