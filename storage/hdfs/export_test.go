package hdfs

import (
	"bytes"
	"context"
	"net"
)

// SetRPCDial replaces how the store connects to the namenode for its own
// rename2/delete calls, so tests can put a faulty network in between.
func SetRPCDial(s *Store, dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	s.rpc.dial = dial
}

// ReadResponse exposes the RPC response parser to the fuzz test.
func ReadResponse(b []byte) ([]byte, error) {
	return readResponse(bytesReader(b), "test", 1)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// RemoveRoot deletes the store's root directory and everything below it.
func RemoveRoot(s *Store) error { return s.client.RemoveAll(s.root) }
