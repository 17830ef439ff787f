// Package httpstatus records the status a handler answers, for the
// middleware that log requests (package http) and measure them (package
// metrics).
package httpstatus

import "net/http"

// Recorder is a ResponseWriter that keeps the status written through it.
type Recorder struct {
	http.ResponseWriter
	// Status is the status written, 200 until WriteHeader is called (as
	// net/http answers a handler that writes a body without it).
	Status int
}

// NewRecorder returns a Recorder writing to w.
func NewRecorder(w http.ResponseWriter) *Recorder {
	return &Recorder{ResponseWriter: w, Status: http.StatusOK}
}

// WriteHeader keeps code and writes it.
func (r *Recorder) WriteHeader(code int) {
	r.Status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer underneath, so a
// stream can flush and set deadlines through a Recorder.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
