package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// LogOptions select what part of a container log to return.
type LogOptions struct {
	Follow     bool
	TailLines  int64 // < 0 = all
	Timestamps bool
	SinceTime  time.Time
	LimitBytes int64 // <= 0 = no limit
}

// criLogLine is one parsed line of a CRI log file:
// "2016-10-06T00:17:09.669794202Z stdout F the content".
type criLogLine struct {
	ts      string
	stream  string
	partial bool
	content []byte
}

func parseCRILine(line []byte) (criLogLine, error) {
	var l criLogLine
	parts := bytes.SplitN(line, []byte{' '}, 4)
	if len(parts) < 3 {
		return l, fmt.Errorf("malformed CRI log line %q", line)
	}
	l.ts, l.stream = string(parts[0]), string(parts[1])
	switch string(parts[2]) {
	case "P":
		l.partial = true
	case "F":
	default:
		// Older format without a tag: the rest is content.
		l.content = bytes.Join(parts[2:], []byte{' '})
		return l, nil
	}
	if len(parts) == 4 {
		l.content = parts[3]
	}
	return l, nil
}

// logWriter turns CRI log lines into plain log text, joining partial
// lines, and honours timestamps/since/limit.
type logWriter struct {
	w       io.Writer
	opts    LogOptions
	pending []byte
	pendTS  string
	written int64
}

var errLimit = errors.New("log limit reached")

func (lw *logWriter) line(raw []byte) error {
	l, err := parseCRILine(raw)
	if err != nil {
		return nil // skip garbage rather than failing the whole read
	}
	if lw.pending == nil {
		lw.pendTS = l.ts
	}
	lw.pending = append(lw.pending, l.content...)
	if l.partial {
		return nil
	}
	msg := append(lw.pending, '\n')
	ts := lw.pendTS
	lw.pending = nil
	if !lw.opts.SinceTime.IsZero() {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil && t.Before(lw.opts.SinceTime) {
			return nil
		}
	}
	if lw.opts.Timestamps {
		msg = append([]byte(ts+" "), msg...)
	}
	if lw.opts.LimitBytes > 0 && lw.written+int64(len(msg)) > lw.opts.LimitBytes {
		msg = msg[:lw.opts.LimitBytes-lw.written]
		_, _ = lw.w.Write(msg)
		lw.written = lw.opts.LimitBytes
		return errLimit
	}
	n, err := lw.w.Write(msg)
	lw.written += int64(n)
	if f, ok := lw.w.(interface{ Flush() }); ok {
		f.Flush()
	}
	return err
}

// tailOffset returns the file offset where the last n complete lines start.
func tailOffset(f *os.File, n int64) (int64, error) {
	if n < 0 {
		return 0, nil
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if n == 0 {
		return size, nil
	}
	const chunk = 32 << 10
	var count int64
	pos := size
	buf := make([]byte, chunk)
	first := true
	for pos > 0 {
		read := min(int64(chunk), pos)
		pos -= read
		if _, err := f.ReadAt(buf[:read], pos); err != nil && err != io.EOF {
			return 0, err
		}
		for i := read - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			if first && pos+i == size-1 {
				continue // the file's final newline ends the last line
			}
			// Only full lines (F) count; partial pieces belong to the next.
			count++
			if count >= n {
				return pos + i + 1, nil
			}
		}
		first = false
	}
	return 0, nil
}

// ReadLogs writes a CRI-format log file to w as plain text. With Follow
// it keeps reading new lines until ctx ends or running() turns false (the
// container exited), then drains what is left.
func ReadLogs(ctx context.Context, path string, opts LogOptions, w io.Writer, running func() bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("log file %s: %w", path, err)
	}
	defer func() { f.Close() }() // f changes when the log rotates
	off, err := tailOffset(f, opts.TailLines)
	if err != nil {
		return fmt.Errorf("log file %s: %w", path, err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	lw := &logWriter{w: w, opts: opts}
	r := bufio.NewReaderSize(f, 64<<10)
	var partial []byte
	lastCheck := time.Now()
	alive := true
	// rotated is set when following finds path naming a new file (the
	// kubelet rotated the log): the old file is read to its end once more,
	// then reading goes on in the new one.
	rotated := false
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			full := append(partial, line[:len(line)-1]...)
			partial = nil
			if werr := lw.line(full); werr != nil {
				if errors.Is(werr, errLimit) {
					return nil
				}
				return werr
			}
			continue
		}
		partial = append(partial, line...)
		if err != nil && err != io.EOF {
			return err
		}
		// At the end of the file.
		if !opts.Follow || !alive {
			return nil
		}
		if rotated {
			nf, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("log file %s: %w", path, err)
			}
			f.Close()
			f, r, partial, rotated = nf, bufio.NewReaderSize(nf, 64<<10), nil, false
			continue
		}
		if replaced(f, path) {
			rotated = true
			continue
		}
		if time.Since(lastCheck) > time.Second {
			lastCheck = time.Now()
			if !running() {
				alive = false // one more pass to drain, then stop
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// replaced reports whether path now names another file than f (the log
// was rotated and the runtime has opened a new one).
func replaced(f *os.File, path string) bool {
	cur, err := f.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	return err == nil && !os.SameFile(cur, now)
}
