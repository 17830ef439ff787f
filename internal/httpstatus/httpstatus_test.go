package httpstatus

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRecorderKeepsTheStatus(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		want    int
	}{
		{"a body without WriteHeader", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }, http.StatusOK},
		{"WriteHeader", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }, http.StatusTeapot},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			rec := NewRecorder(w)
			tt.handler(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Status != tt.want || w.Code != tt.want {
				t.Errorf("recorded %d, written %d; want %d", rec.Status, w.Code, tt.want)
			}
		})
	}
}

// TestRecorderUnwraps: a stream behind the recorder still reaches the
// connection's Flush and deadlines through http.ResponseController.
func TestRecorderUnwraps(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rc := http.NewResponseController(NewRecorder(w))
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the recorder: %v", err)
		}
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush through the recorder: %v", err)
		}
	}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
