package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Event reports something that happened to an object, in the core/v1 shape
// that kubectl describe and client-go's recorder use.
type Event struct {
	metav1.TypeMeta `json:",inline"`
	// Kubernetes tags Event metadata without omitempty; we keep that.
	metav1.ObjectMeta `json:"metadata"`

	InvolvedObject ObjectReference `json:"involvedObject"`
	Reason         string          `json:"reason,omitempty"`
	Message        string          `json:"message,omitempty"`
	Source         EventSource     `json:"source,omitempty"`
	FirstTimestamp metav1.Time     `json:"firstTimestamp,omitempty"`
	LastTimestamp  metav1.Time     `json:"lastTimestamp,omitempty"`
	Count          int32           `json:"count,omitempty"`
	// Type is Normal or Warning.
	Type      string           `json:"type,omitempty"`
	EventTime metav1.MicroTime `json:"eventTime,omitempty"`
	Series    *EventSeries     `json:"series,omitempty"`
	Action    string           `json:"action,omitempty"`
	Related   *ObjectReference `json:"related,omitempty"`
	// The JSON name really is reportingComponent, without omitempty.
	ReportingController string `json:"reportingComponent"`
	ReportingInstance   string `json:"reportingInstance"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EventList is a list of events.
type EventList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Event `json:"items"`
}

// EventSource names the component (and host) that reported an event.
type EventSource struct {
	Component string `json:"component,omitempty"`
	Host      string `json:"host,omitempty"`
}

// EventSeries summarises a repeating event.
type EventSeries struct {
	Count            int32            `json:"count,omitempty"`
	LastObservedTime metav1.MicroTime `json:"lastObservedTime,omitempty"`
}

// Event types.
const (
	EventTypeNormal  string = "Normal"
	EventTypeWarning string = "Warning"
)
