package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection that sends GET requests and
// reads their responses, with far less work per request than net/http's
// client, so that the load generator takes as little as possible of the
// CPU it shares with the server under test.
type conn struct {
	addr string
	host string
	nc   net.Conn
	br   *bufio.Reader
	req  []byte
}

func newConn(addr string) *conn {
	return &conn{addr: addr, host: addr, req: make([]byte, 0, 512)}
}

// errStatus is a response that is not 200.
type errStatus int

func (e errStatus) Error() string { return "status " + strconv.Itoa(int(e)) }

// timeout bounds one request, so that a stuck server fails the run.
const timeout = 30 * time.Second

// get sends GET path with the Authorization header auth (none when empty)
// and the header lines extra ("Name: value"), and reads the whole response. It returns an errStatus for any status
// but 200. After an error the connection is closed and the next call
// dials again.
func (c *conn) get(path, auth string, extra []string) error {
	if c.nc == nil {
		nc, err := net.DialTimeout("tcp", c.addr, timeout)
		if err != nil {
			return err
		}
		c.nc = nc
		c.br = bufio.NewReaderSize(nc, 16<<10)
	}
	b := append(c.req[:0], "GET "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nUser-Agent: accessgate-loadgen\r\nAccept: */*\r\n"...)
	if auth != "" {
		b = append(b, "Authorization: "...)
		b = append(b, auth...)
		b = append(b, "\r\n"...)
	}
	for _, h := range extra {
		b = append(b, h...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	c.req = b
	_ = c.nc.SetDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write(b); err != nil {
		c.close()
		return err
	}
	status, keep, err := c.readResponse()
	if err != nil || !keep {
		c.close()
	}
	if err != nil {
		return err
	}
	if status != 200 {
		return errStatus(status)
	}
	return nil
}

func (c *conn) close() {
	if c.nc != nil {
		_ = c.nc.Close()
		c.nc, c.br = nil, nil
	}
}

var (
	hdrContentLength    = []byte("content-length:")
	hdrTransferEncoding = []byte("transfer-encoding:")
	hdrConnection       = []byte("connection:")
)

// readResponse reads a response and discards its body. keep reports
// whether the connection may be reused.
func (c *conn) readResponse() (status int, keep bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	length, chunked, keep := -1, false, true
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		switch {
		case hasPrefixFold(line, hdrContentLength):
			length, err = strconv.Atoi(string(bytes.TrimSpace(line[len(hdrContentLength):])))
			if err != nil {
				return 0, false, fmt.Errorf("malformed %q", line)
			}
		case hasPrefixFold(line, hdrTransferEncoding):
			chunked = bytes.Contains(bytes.ToLower(line), []byte("chunked"))
		case hasPrefixFold(line, hdrConnection):
			keep = !bytes.Contains(bytes.ToLower(line), []byte("close"))
		}
	}
	switch {
	case chunked:
		err = c.discardChunked()
	case length >= 0:
		_, err = c.br.Discard(length)
	case status == 204 || status == 304:
	default:
		_, err = io.Copy(io.Discard, c.br) // body until close
		keep = false
	}
	return status, keep, err
}

func (c *conn) discardChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil {
			return fmt.Errorf("malformed chunk size %q", line)
		}
		if n == 0 {
			for { // trailers
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := c.br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}

func hasPrefixFold(b, prefix []byte) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], prefix)
}

// IsStatus reports whether err is a response with a status other than
// 200, and which.
func IsStatus(err error) (int, bool) {
	var s errStatus
	if errors.As(err, &s) {
		return int(s), true
	}
	return 0, false
}
