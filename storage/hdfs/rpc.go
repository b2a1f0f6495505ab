package hdfs

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file is a minimal client of the namenode's ClientProtocol over Hadoop
// RPC (protocol version 9, simple authentication), for the two calls the
// colinmarc/hdfs client does not offer in the form we need:
//
//   - rename2 with overwriteDest=false, which the namenode executes
//     atomically under its namespace lock and refuses with
//     FileAlreadyExistsException when the destination exists. (The library's
//     Rename always passes overwriteDest=true.)
//   - delete, whose boolean result says whether the path existed. (The
//     library's Remove discards it.)
//   - getListing from a given startAfter name, so that a page of a large
//     directory can be read without reading the names before it. (The
//     library's Readdir always starts at the beginning.)
//
// Each call uses its own connection: commits are rare, and a fresh connection
// keeps the failure handling simple. Messages are encoded by hand with
// protowire; the field numbers come from Hadoop's RpcHeader.proto,
// IpcConnectionContext.proto, ProtobufRpcEngine.proto and
// ClientNamenodeProtocol.proto.

const (
	rpcVersion         = 9
	clientProtocol     = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
	connectionCallID   = -3 // the call id of the connection context
	maxResponseLength  = 64 << 20
	defaultCallTimeout = 60 * time.Second

	exceptionFileAlreadyExists = "org.apache.hadoop.fs.FileAlreadyExistsException"
	exceptionFileNotFound      = "java.io.FileNotFoundException"
	exceptionStandby           = "org.apache.hadoop.ipc.StandbyException"
)

// remoteError is an exception thrown by the namenode: the call was processed
// (or refused) and its outcome is known.
type remoteError struct {
	method    string
	exception string
	message   string
}

func (e *remoteError) Error() string {
	msg := e.message
	// The message often carries a Java stack trace; the first line says it.
	for i := 0; i < len(msg); i++ {
		if msg[i] == '\n' {
			msg = msg[:i]
			break
		}
	}
	return fmt.Sprintf("namenode %s: %s: %s", e.method, e.exception, msg)
}

// transportError means the call may have reached the namenode but no answer
// came back (sent) or that it certainly did not (not sent).
type transportError struct {
	sent bool
	err  error
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

type namenodeRPC struct {
	addresses []string
	user      string
	clientID  []byte
	callID    atomic.Int32
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newNamenodeRPC(addresses []string, user string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *namenodeRPC {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &namenodeRPC{addresses: addresses, user: user, clientID: id, dial: dial}
}

// rename2 renames src to dst, failing with a remoteError carrying
// FileAlreadyExistsException if dst exists.
func (n *namenodeRPC) rename2(ctx context.Context, src, dst string) error {
	_, err := n.call(ctx, "rename2", twoStringsAndFalse(src, dst)) // overwriteDest = false
	return err
}

// twoStringsAndFalse encodes the request message shape of rename2 and
// getListing: string fields 1 and 2, and bool field 3 false.
func twoStringsAndFalse(a, b string) []byte {
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendString(req, a)
	req = protowire.AppendTag(req, 2, protowire.BytesType)
	req = protowire.AppendString(req, b)
	req = protowire.AppendTag(req, 3, protowire.VarintType)
	return protowire.AppendVarint(req, 0)
}

// delete removes the file at path (not recursively) and reports whether it
// existed.
func (n *namenodeRPC) delete(ctx context.Context, path string) (bool, error) {
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendString(req, path)
	req = protowire.AppendTag(req, 2, protowire.VarintType)
	req = protowire.AppendVarint(req, 0) // recursive = false
	resp, err := n.call(ctx, "delete", req)
	if err != nil {
		return false, err
	}
	result, ok := boolField(resp, 1)
	if !ok {
		return false, fmt.Errorf("namenode delete: response without a result")
	}
	return result, nil
}

// listEntry is one entry of a getListing answer.
type listEntry struct {
	name    string
	isFile  bool
	size    int64
	modTime int64 // milliseconds since the epoch
}

// getListing returns the entries of directory dir whose names sort after
// startAfter (byte order, as the namenode keeps them), one batch as the
// namenode answers it (at most dfs.ls.limit, default 1000), and how many
// entries remain after the batch. A missing directory has no entries.
func (n *namenodeRPC) getListing(ctx context.Context, dir, startAfter string) ([]listEntry, int, error) {
	resp, err := n.call(ctx, "getListing", twoStringsAndFalse(dir, startAfter)) // needLocation = false
	var re *remoteError
	if errors.As(err, &re) && re.exception == exceptionFileNotFound {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	dirList, ok := bytesField(resp, 1)
	if !ok {
		return nil, 0, nil // no such directory
	}
	var entries []listEntry
	remaining := 0
	err = eachField(dirList, func(num protowire.Number, v uint64, b []byte) error {
		switch num {
		case 1:
			e, err := parseFileStatus(b)
			if err != nil {
				return err
			}
			entries = append(entries, e)
		case 2:
			remaining = int(v)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("namenode getListing %s: %w", dir, err)
	}
	return entries, remaining, nil
}

// parseFileStatus decodes the fields of an HdfsFileStatusProto that List
// uses: fileType (1), path (2, the local name), length (3) and
// modification_time (7).
func parseFileStatus(msg []byte) (listEntry, error) {
	var e listEntry
	err := eachField(msg, func(num protowire.Number, v uint64, b []byte) error {
		switch num {
		case 1:
			e.isFile = v == 2 // IS_FILE
		case 2:
			e.name = string(b)
		case 3:
			e.size = int64(v)
		case 7:
			e.modTime = int64(v)
		}
		return nil
	})
	return e, err
}

// eachField calls fn for every varint and length-delimited field of an
// encoded message (v for varints, b for bytes), skipping other wire types.
func eachField(msg []byte, fn func(num protowire.Number, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		num, typ, m := protowire.ConsumeTag(msg)
		if m < 0 {
			return protowire.ParseError(m)
		}
		msg = msg[m:]
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(msg)
			if m < 0 {
				return protowire.ParseError(m)
			}
			msg = msg[m:]
			if err := fn(num, v, nil); err != nil {
				return err
			}
		case protowire.BytesType:
			b, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return protowire.ParseError(m)
			}
			msg = msg[m:]
			if err := fn(num, 0, b); err != nil {
				return err
			}
		default:
			m := protowire.ConsumeFieldValue(num, typ, msg)
			if m < 0 {
				return protowire.ParseError(m)
			}
			msg = msg[m:]
		}
	}
	return nil
}

// bytesField returns the last length-delimited field num of msg.
func bytesField(msg []byte, num protowire.Number) (b []byte, ok bool) {
	_ = eachField(msg, func(n protowire.Number, _ uint64, v []byte) error {
		if n == num && v != nil {
			b, ok = v, true
		}
		return nil
	})
	return b, ok
}

// call sends one request to the first namenode that is not a standby and
// returns the encoded response message.
func (n *namenodeRPC) call(ctx context.Context, method string, req []byte) ([]byte, error) {
	var errs []error
	for _, addr := range n.addresses {
		resp, err := n.callOne(ctx, addr, method, req)
		var re *remoteError
		if errors.As(err, &re) && re.exception == exceptionStandby {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue // HA: try the next namenode
		}
		return resp, err
	}
	return nil, &transportError{sent: false, err: fmt.Errorf("namenode %s: no active namenode: %w", method, errors.Join(errs...))}
}

func (n *namenodeRPC) callOne(ctx context.Context, addr, method string, req []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, &transportError{sent: false, err: err}
	}
	conn, err := n.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, &transportError{sent: false, err: fmt.Errorf("namenode %s: dial %s: %w", method, addr, err)}
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultCallTimeout)
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	callID := n.callID.Add(1) & 0x7fffffff
	var msg []byte
	// Connection header: "hrpc", version, service class 0, auth protocol 0
	// (none: simple authentication).
	msg = append(msg, 'h', 'r', 'p', 'c', rpcVersion, 0, 0)
	msg = appendPacket(msg, n.requestHeader(connectionCallID), n.connectionContext())
	msg = appendPacket(msg, n.requestHeader(callID), methodHeader(method), req)
	if _, err := conn.Write(msg); err != nil {
		return nil, &transportError{sent: true, err: withCtx(ctx, fmt.Errorf("namenode %s: send to %s: %w", method, addr, err))}
	}
	resp, err := readResponse(bufio.NewReader(conn), method, callID)
	if err != nil {
		var re *remoteError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, &transportError{sent: true, err: withCtx(ctx, fmt.Errorf("namenode %s: read from %s: %w", method, addr, err))}
	}
	return resp, nil
}

// withCtx attaches the context's error when it caused err, so callers can
// tell a cancellation from a network failure.
func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %w", err, cerr)
	}
	return err
}

func (n *namenodeRPC) requestHeader(callID int32) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 2) // rpcKind = RPC_PROTOCOL_BUFFER
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 0) // rpcOp = RPC_FINAL_PACKET
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(int64(callID))) // sint32 callId
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, n.clientID)
	if callID >= 0 {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(0)) // retryCount = 0
	}
	return b
}

func (n *namenodeRPC) connectionContext() []byte {
	var user []byte
	user = protowire.AppendTag(user, 1, protowire.BytesType)
	user = protowire.AppendString(user, n.user) // effectiveUser
	var b []byte
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, user) // userInfo
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, clientProtocol) // protocol
	return b
}

func methodHeader(method string) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, method)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, clientProtocol)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, 1) // clientProtocolVersion
	return b
}

// appendPacket appends a packet: a big-endian uint32 length followed by each
// message prefixed with its varint length.
func appendPacket(b []byte, msgs ...[]byte) []byte {
	n := 0
	for _, m := range msgs {
		n += protowire.SizeBytes(len(m))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for _, m := range msgs {
		b = protowire.AppendBytes(b, m)
	}
	return b
}

// readResponse reads one response packet for callID and returns the response
// message, or a remoteError if the namenode reported an exception.
func readResponse(r io.Reader, method string, callID int32) ([]byte, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lenBuf[:])
	if n > maxResponseLength {
		return nil, fmt.Errorf("response of %d bytes is too large", n)
	}
	packet := make([]byte, n)
	if _, err := io.ReadFull(r, packet); err != nil {
		return nil, err
	}
	header, m := protowire.ConsumeBytes(packet)
	if m < 0 {
		return nil, fmt.Errorf("malformed response header: %w", protowire.ParseError(m))
	}
	packet = packet[m:]
	var (
		gotCallID      uint64
		status         uint64
		exception, msg string
	)
	for len(header) > 0 {
		num, typ, m := protowire.ConsumeTag(header)
		if m < 0 {
			return nil, fmt.Errorf("malformed response header: %w", protowire.ParseError(m))
		}
		header = header[m:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			gotCallID, m = protowire.ConsumeVarint(header)
		case num == 2 && typ == protowire.VarintType:
			status, m = protowire.ConsumeVarint(header)
		case num == 4 && typ == protowire.BytesType:
			var s []byte
			s, m = protowire.ConsumeBytes(header)
			exception = string(s)
		case num == 5 && typ == protowire.BytesType:
			var s []byte
			s, m = protowire.ConsumeBytes(header)
			msg = string(s)
		default:
			m = protowire.ConsumeFieldValue(num, typ, header)
		}
		if m < 0 {
			return nil, fmt.Errorf("malformed response header: %w", protowire.ParseError(m))
		}
		header = header[m:]
	}
	if status != 0 { // ERROR or FATAL
		if exception == "" {
			exception = fmt.Sprintf("status %d", status)
		}
		return nil, &remoteError{method: method, exception: exception, message: msg}
	}
	if gotCallID != uint64(callID) {
		return nil, fmt.Errorf("response for call %d, want %d", gotCallID, callID)
	}
	if len(packet) == 0 {
		return nil, nil // an empty response message
	}
	resp, m := protowire.ConsumeBytes(packet)
	if m < 0 {
		return nil, fmt.Errorf("malformed response: %w", protowire.ParseError(m))
	}
	return resp, nil
}

// boolField returns the value of bool field num in an encoded message.
func boolField(msg []byte, num protowire.Number) (value, ok bool) {
	for len(msg) > 0 {
		n, typ, m := protowire.ConsumeTag(msg)
		if m < 0 {
			return false, false
		}
		msg = msg[m:]
		if n == num && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(msg)
			if m < 0 {
				return false, false
			}
			msg = msg[m:]
			value, ok = protowire.DecodeBool(v), true
			continue
		}
		m = protowire.ConsumeFieldValue(n, typ, msg)
		if m < 0 {
			return false, false
		}
		msg = msg[m:]
	}
	return value, ok
}
