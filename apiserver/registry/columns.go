package registry

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// col builds a Table column; wide columns (priority 1) only show with
// `get -o wide`.
func col(name, typ, desc string) metav1.TableColumnDefinition {
	c := metav1.TableColumnDefinition{Name: name, Type: typ, Description: desc}
	if name == "Name" {
		c.Format = "name"
	}
	return c
}

func wide(c metav1.TableColumnDefinition) metav1.TableColumnDefinition {
	c.Priority = 1
	return c
}

var (
	nameCol = col("Name", "string", "Name must be unique within a namespace.")
	ageCol  = col("Age", "string", "Time since the object was created.")
)

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
