package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// ErrNoDaemon: nothing serves the socket (no slewd run, or another run
// directory).
var ErrNoDaemon = errors.New("no slewd daemon is running")

// ErrPermission: the socket is there but this user may not use it.
var ErrPermission = errors.New("permission denied")

// Ask sends one request to the daemon at socket and returns its answer.
// An answer with Error set is returned as is, with a nil error; a
// failure to ask wraps ErrNoDaemon or ErrPermission when it is one.
func Ask(ctx context.Context, socket, command string) (Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*connTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			return Response{}, fmt.Errorf("%w (nothing serves %s)", ErrNoDaemon, socket)
		case errors.Is(err, os.ErrPermission):
			return Response{}, fmt.Errorf("%s: %w (reading needs group %s; changing state needs root)", socket, ErrPermission, Group)
		}
		return Response{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(2 * connTimeout))
	}
	b, err := json.Marshal(Request{Version: Version, Command: command})
	if err != nil {
		return Response{}, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return Response{}, fmt.Errorf("asking the daemon: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return Response{}, fmt.Errorf("reading the daemon's answer: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("the daemon's answer: %w", err)
	}
	return resp, nil
}
