package bench

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// newBar returns a progress bar of total units (-1: unknown, a spinner) on
// w, silent unless w is a terminal: a bar in a log or a pipe is noise.
func newBar(w io.Writer, desc, unit string, total int64) *progressbar.ProgressBar {
	f, ok := w.(*os.File)
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetVisibility(ok && term.IsTerminal(int(f.Fd()))),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// track shows count() on a bar until the returned stop is called. It polls
// rather than being told of each request, so that workers only bump an
// atomic counter.
func track(w io.Writer, desc string, total int64, count func() int64) (stop func()) {
	bar := newBar(w, desc, "req", total)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				bar.Set64(count())
			case <-quit:
				bar.Finish()
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
