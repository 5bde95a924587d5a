package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"slewd/control"
)

// Limits of one scrape: the request head must come within connTimeout
// and fit in maxHead; a few scrapes are served at a time.
const (
	connTimeout = 10 * time.Second
	maxHead     = 8192
	maxConns    = 4
)

// Serve answers HTTP scrapes on ln until ctx ends: GET (or HEAD) /metrics
// is the exposition of one snapshot, / a pointer to it, anything else
// 404, another method 405. Each response closes its connection.
//
// It is a small HTTP/1.x responder rather than net/http, which with
// crypto/tls and HTTP/2 would add 3.8 MB to slewd (5.99 → 9.89 MB on
// amd64, against a 10 MB budget; docs/operations.md has the figures).
// Prometheus scrapes with one GET and no body, and reconnects when told
// Connection: close; that is all this needs to serve.
func Serve(ctx context.Context, ln net.Listener, v control.View) error {
	return control.AcceptLoop(ctx, ln, maxConns, "metrics", func(c net.Conn) {
		respond(c, "503 Service Unavailable", "text/plain; charset=utf-8", []byte("busy\n"), false)
		c.Close()
	}, func(c net.Conn) { serveConn(c, v) })
}

func serveConn(c net.Conn, v control.View) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(connTimeout))
	method, path, err := readHead(bufio.NewReaderSize(io.LimitReader(c, maxHead), maxHead))
	if err != nil {
		respond(c, "400 Bad Request", "text/plain; charset=utf-8", []byte(err.Error()+"\n"), false)
		return
	}
	head := method == "HEAD"
	if method != "GET" && !head {
		respond(c, "405 Method Not Allowed", "text/plain; charset=utf-8", []byte("GET /metrics\n"), false)
		return
	}
	switch path {
	case "/metrics":
		t, srcs := v.Both()
		var b bytes.Buffer
		if err := Write(&b, v.Version, t, srcs); err != nil {
			respond(c, "500 Internal Server Error", "text/plain; charset=utf-8", []byte(err.Error()+"\n"), false)
			return
		}
		respond(c, "200 OK", ContentType, b.Bytes(), head)
	case "/":
		respond(c, "200 OK", "text/plain; charset=utf-8", []byte("slewd: metrics at /metrics\n"), head)
	default:
		respond(c, "404 Not Found", "text/plain; charset=utf-8", []byte("not found: slewd serves /metrics\n"), head)
	}
}

// readHead reads an HTTP/1.x request line and headers, and returns the
// method and the path without its query. A scrape has no body; one that
// says it has one is refused rather than misread.
func readHead(r *bufio.Reader) (method, path string, err error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", "", errors.New("incomplete request")
	}
	parts := strings.Fields(line)
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") || !strings.HasPrefix(parts[1], "/") {
		return "", "", errors.New("not an HTTP/1 request line")
	}
	method, path = parts[0], parts[1]
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for {
		h, err := r.ReadString('\n')
		if err != nil {
			return "", "", errors.New("incomplete or too large request head")
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			return method, path, nil
		}
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return "", "", errors.New("bad header line")
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			if strings.TrimSpace(value) != "0" {
				return "", "", errors.New("a request body is not expected")
			}
		case "transfer-encoding":
			return "", "", errors.New("a request body is not expected")
		}
	}
}

func respond(w io.Writer, status, contentType string, body []byte, head bool) {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + status + "\r\nContent-Type: " + contentType +
		"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n")
	if !head {
		b.Write(body)
	}
	w.Write(b.Bytes())
}
