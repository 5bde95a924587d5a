package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"slewd/discipline"
)

// Limits of one connection: a client that says nothing, or too much, is
// cut off; a few at a time are served (a scraper and a person).
const (
	connTimeout = 2 * time.Second
	maxRequest  = 4096
	maxConns    = 8
)

// Group is the group whose members may read the socket.
const Group = "slewd"

// Server answers the control socket from the discipline's snapshots.
type Server struct {
	View View
	// Post hands an event to the discipline's loop (clock.Loop.Post),
	// where Handler runs it: how a request changes state.
	Post func(ev any)
	Log  *slog.Logger

	// peerUID says who is on the other end; nil: SO_PEERCRED.
	peerUID func(*net.UnixConn) (uint32, error)
}

// Listen makes the socket at path: its directory (0755) if missing, a
// stale socket from a killed daemon removed, and the file 0660 in group
// slewd when that group exists (members may read; root may change
// state), else 0600. It says which in mode.
func Listen(path string) (ln *net.UnixListener, mode string, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, "", fmt.Errorf("control socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, "", fmt.Errorf("control socket: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, "", fmt.Errorf("control socket: another slewd is serving %s", path)
		}
		os.Remove(path) // stale
	}
	ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, "", fmt.Errorf("control socket: %w", err)
	}
	// Connecting takes write permission on the file: the umask's mode
	// (0755 with 022) lets only the owner in until this chmod.
	mode = "0600, owner only"
	perm := os.FileMode(0o600)
	if g, err := user.LookupGroup(Group); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil && os.Chown(path, -1, gid) == nil {
			perm, mode = 0o660, "0660, group "+Group
		}
	}
	if err := os.Chmod(path, perm); err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("control socket: %w", err)
	}
	return ln, mode, nil
}

// Serve answers connections on ln until ctx ends, then closes it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return AcceptLoop(ctx, ln, maxConns, "control socket", func(c net.Conn) { c.Close() /* busy: the client retries */ },
		func(c net.Conn) {
			if err := s.serveConn(ctx, c); err != nil {
				log.Debug("control socket: a client", "err", err)
			}
		})
}

// AcceptLoop accepts connections on ln until ctx ends, serving each with
// serve on a goroutine of its own, at most max at once; a connection over
// that goes to busy (which must close it). It waits for the connections
// it serves before it returns; nil when ctx ended, else what broke the
// listener, prefixed with what (for the control socket and the metrics).
func AcceptLoop(ctx context.Context, ln net.Listener, max int, what string, busy, serve func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, max)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case slots <- struct{}{}:
		default:
			busy(c)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			serve(c)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(connTimeout))
	uid, err := s.uid(c)
	if err != nil {
		return err
	}
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxRequest), maxRequest).ReadBytes('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return fmt.Errorf("reading the request: %w", err)
	}
	var req Request
	resp := Response{Version: Version}
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else {
		ctx, cancel := context.WithTimeout(ctx, connTimeout)
		resp = s.Answer(ctx, req, uid)
		cancel()
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	_, err = c.Write(append(b, '\n'))
	return err
}

func (s *Server) uid(c net.Conn) (uint32, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, fmt.Errorf("not a Unix socket: %T", c)
	}
	if s.peerUID != nil {
		return s.peerUID(uc)
	}
	return PeerUID(uc)
}

// PeerUID is the user id of the process on the other end of c
// (SO_PEERCRED: the kernel's word, taken when it connected).
func PeerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return cred.Uid, nil
}

// NeedsRoot says whether a command changes state, and so is root's only.
func NeedsRoot(command string) bool { return command == CmdBurst }

// Answer is the protocol without the socket: the reply to req from the
// user uid.
func (s *Server) Answer(ctx context.Context, req Request, uid uint32) Response {
	resp := Response{Version: Version, Command: req.Command}
	if req.Version != Version {
		resp.Error = fmt.Sprintf("protocol version %d is not spoken here: this slewd speaks version %d", req.Version, Version)
		return resp
	}
	if NeedsRoot(req.Command) && uid != 0 {
		resp.Denied = true
		resp.Error = fmt.Sprintf("%s changes the daemon's state: only root may ask it (you are uid %d)", req.Command, uid)
		return resp
	}
	switch req.Command {
	case CmdSources:
		resp.Sources = s.View.Sources()
	case CmdTracking:
		t := s.View.Tracking()
		resp.Tracking = &t
	case CmdBurst:
		if err := s.post(ctx, burst{}); err != nil {
			resp.Error = err.Error()
		}
	default:
		resp.Error = fmt.Sprintf("unknown command %q (known: %s, %s, %s)", req.Command, CmdSources, CmdTracking, CmdBurst)
	}
	return resp
}

// post hands a request to the discipline's loop and waits until Handler
// has run it.
func (s *Server) post(ctx context.Context, r any) error {
	if s.Post == nil {
		return errors.New("this daemon takes no requests that change state")
	}
	done := make(chan struct{})
	s.Post(request{r, done})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the daemon's loop did not take the request: %w", ctx.Err())
	}
}

// request is a state change posted into the loop; done is closed once
// it is made.
type request struct {
	what any
	done chan struct{}
}

// burst: ask every source again now (Discipline.Remeasure).
type burst struct{}

// Handler runs the control socket's state changes on the discipline's
// loop: put it in discipline.Env.Handlers.
var Handler discipline.Handler = discipline.HandlerFunc(handle)

func handle(d *discipline.Discipline, ev any) (bool, error) {
	r, ok := ev.(request)
	if !ok {
		return false, nil
	}
	defer close(r.done)
	switch r.what.(type) {
	case burst:
		d.Remeasure()
	}
	return true, nil
}
