package storage

import (
	"errors"
	"fmt"
)

// Error codes the REST layer maps to HTTP statuses.
const (
	ErrCodeKeyNotFound             = iota + 1 // 404 NotFound
	ErrCodeKeyExists                          // 409 AlreadyExists
	ErrCodeResourceVersionConflict            // 409 Conflict
	ErrCodeInvalidObj                         // 422/500 depending on origin
	ErrCodeExpired                            // 410 Gone, reason Expired
	ErrCodeTooLargeResourceVersion            // 504 Timeout (rv from the future)
	ErrCodePrecondition                       // 409 Conflict (uid/rv precondition)
)

// Error is a storage failure with a code and the key it concerns.
type Error struct {
	Code int
	Key  string
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Key, e.Msg) }

// NewError builds an *Error.
func NewError(code int, key, format string, args ...any) *Error {
	return &Error{Code: code, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// IsCode reports whether err (or anything it wraps) is a storage *Error with code.
func IsCode(err error, code int) bool {
	var se *Error
	return errors.As(err, &se) && se.Code == code
}

func IsNotFound(err error) bool { return IsCode(err, ErrCodeKeyNotFound) }
func IsExists(err error) bool   { return IsCode(err, ErrCodeKeyExists) }
func IsConflict(err error) bool { return IsCode(err, ErrCodeResourceVersionConflict) }
func IsExpired(err error) bool  { return IsCode(err, ErrCodeExpired) }
