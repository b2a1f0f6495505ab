package writer

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/protolake/protolake/internal/partpath"
	"github.com/protolake/protolake/schema"
)

// route returns the open file of the row's partition, creating it. The
// partition key is built in reused buffers (routing allocates only when a
// new partition opens), and not at all when the partition values are the
// last record's.
func (w *Writer) route(frame int, k Kafka) (*openFile, error) {
	parts := w.plan.Partitions
	if len(parts) == 0 {
		if f := w.files[""]; f != nil {
			return f, nil
		}
		return w.open("", nil), nil
	}
	w.pvalBuf = w.pvalBuf[:0]
	w.pvalPos = w.pvalPos[:0]
	for i, p := range parts {
		start := len(w.pvalBuf)
		var null bool
		var err error
		w.pvalBuf, null, err = w.appendPartitionValue(w.pvalBuf, i, p, frame, k)
		if err != nil {
			return nil, err
		}
		if !null && start == len(w.pvalBuf) {
			null = true // an empty value is null in Delta and Hive
		}
		w.pvalPos = append(w.pvalPos, pvalPos{start: start, end: len(w.pvalBuf), null: null})
	}
	// Consecutive records mostly go to the same partition.
	if w.last != nil && string(w.pvalBuf) == string(w.lastVals) && slices.Equal(w.pvalPos, w.lastPos) {
		return w.last, nil
	}
	key := w.keyBuf[:0]
	for i, p := range parts {
		if i > 0 {
			key = append(key, '/')
		}
		key = partpath.AppendEscaped(key, p.Name)
		key = append(key, '=')
		if pp := w.pvalPos[i]; pp.null {
			key = append(key, partpath.Null...)
		} else {
			key = partpath.AppendEscaped(key, unsafeStr(w.pvalBuf[pp.start:pp.end]))
		}
	}
	w.keyBuf = key
	w.lastVals, w.lastPos = append(w.lastVals[:0], w.pvalBuf...), append(w.lastPos[:0], w.pvalPos...)
	if f := w.files[string(key)]; f != nil {
		w.last = f
		return f, nil
	}
	values := make([]*string, len(parts))
	for i, p := range w.pvalPos {
		if !p.null {
			v := string(w.pvalBuf[p.start:p.end])
			values[i] = &v
		}
	}
	w.last = w.open(string(key), values)
	return w.last, nil
}

type pvalPos struct {
	start, end int
	null       bool
}

func (w *Writer) open(key string, values []*string) *openFile {
	var f *openFile
	if len(w.spares) > 0 {
		f = w.takeSpare(w.spareAt(true))
	} else {
		f = newOpenFile(w.layout, &w.records)
	}
	f.key, f.values = key, values
	w.files[key] = f
	w.order = append(w.order, f)
	return f
}

// appendPartitionValue appends one partition column's value in Delta's
// partition-value serialization; null reports a null value.
func (w *Writer) appendPartitionValue(dst []byte, i int, p *schema.PartitionColumn, frame int, k Kafka) ([]byte, bool, error) {
	if p.KafkaTimestamp {
		return w.appendTime(dst, i, p.Transform, k.Timestamp.UTC()), false, nil
	}
	d := &w.dec
	f := w.prog.fields[p.Field.Index]
	s := d.slots[frame+f.slot]
	if f.msgLeaf { // a Timestamp, Duration or wrapper: decode into a scratch column
		if s.n == 0 && f.presence == schema.Explicit {
			return dst, true, nil
		}
		tmp := d.partCol(f.conv)
		saved := d.cols
		d.cols = d.partCols
		fcopy := *f
		fcopy.col = 0
		var err error
		if s.n == 0 {
			err = d.msgLeafFrom(&fcopy, -1, false, 0, 0, 1)
		} else {
			err = d.msgLeafFrom(&fcopy, s.head, true, 0, 0, 1)
		}
		d.cols = saved
		if err != nil {
			return dst, false, err
		}
		if f.p.Wrapper {
			return appendWrapperValue(dst, f, tmp), false, nil
		}
		micros := int64(leUint64(tmp.vals))
		if f.conv == schema.ConvTimestamp {
			t := time.UnixMicro(micros).UTC()
			if p.Transform == schema.Identity {
				return t.AppendFormat(dst, "2006-01-02 15:04:05.999999"), false, nil
			}
			return w.appendTime(dst, i, p.Transform, t), false, nil
		}
		return strconv.AppendInt(dst, micros, 10), false, nil
	}
	var v uint64
	var b []byte
	if s.n == 0 {
		if f.presence == schema.Explicit {
			return dst, true, nil
		}
		v, b = f.defRaw, f.defBytes
	} else {
		v = s.v
		if f.conv == schema.ConvString || f.conv == schema.ConvBytes {
			start, end := unrng(v)
			b = d.buf[start:end]
		}
	}
	switch f.conv {
	case schema.ConvString:
		if !utf8.Valid(b) {
			return dst, false, d.fail(f.path, 0, ErrInvalidUTF8)
		}
		return append(dst, b...), false, nil
	case schema.ConvBytes:
		return append(dst, b...), false, nil
	case schema.ConvInt32, schema.ConvSfixed32, schema.ConvEnumInt:
		return strconv.AppendInt(dst, int64(int32(v)), 10), false, nil
	case schema.ConvInt64, schema.ConvUint64Long, schema.ConvFixed64Long, schema.ConvSfixed64:
		return strconv.AppendInt(dst, int64(v), 10), false, nil
	case schema.ConvUint32, schema.ConvFixed32:
		return strconv.AppendUint(dst, uint64(uint32(v)), 10), false, nil
	case schema.ConvUint64Decimal, schema.ConvFixed64Decimal:
		return strconv.AppendUint(dst, v, 10), false, nil
	case schema.ConvSint32:
		return strconv.AppendInt(dst, int64(int32(protowire.DecodeZigZag(v&math.MaxUint32))), 10), false, nil
	case schema.ConvSint64:
		return strconv.AppendInt(dst, protowire.DecodeZigZag(v), 10), false, nil
	case schema.ConvBool:
		return strconv.AppendBool(dst, v != 0), false, nil
	case schema.ConvEnumString:
		if name, ok := f.enum.Name(protoreflect.EnumNumber(int32(v))); ok {
			return append(dst, name...), false, nil
		}
		return strconv.AppendInt(dst, int64(int32(v)), 10), false, nil
	case schema.ConvFloat:
		return strconv.AppendFloat(dst, float64(math.Float32frombits(uint32(v))), 'g', -1, 32), false, nil
	case schema.ConvDouble:
		return strconv.AppendFloat(dst, math.Float64frombits(v), 'g', -1, 64), false, nil
	}
	return dst, true, nil
}

// partCol returns the decoder's scratch column for partition values of
// well-known types, emptied, typed for conv.
func (d *decoder) partCol(conv schema.Conv) *column {
	if d.partCols == nil {
		d.partCols = []*column{nil}
	}
	kind := parquet.Int64
	switch conv {
	case schema.ConvString, schema.ConvBytes, schema.ConvEnumString:
		kind = parquet.ByteArray
	case schema.ConvBool:
		kind = parquet.Boolean
	case schema.ConvInt32, schema.ConvSint32, schema.ConvSfixed32, schema.ConvEnumInt:
		kind = parquet.Int32
	case schema.ConvFloat:
		kind = parquet.Float
	case schema.ConvDouble:
		kind = parquet.Double
	case schema.ConvUint64Decimal, schema.ConvFixed64Decimal:
		kind = parquet.FixedLenByteArray
	}
	c := d.partCols[0]
	if c == nil || c.spec.kind != kind {
		c = newColumn(&colSpec{kind: kind, typeLen: 9})
		d.partCols[0] = c
	}
	c.vals, c.bools, c.nvals = c.vals[:0], c.bools[:0], 0
	return c
}

func appendWrapperValue(dst []byte, f *fprog, c *column) []byte {
	switch f.conv {
	case schema.ConvString, schema.ConvBytes:
		if len(c.vals) < 4 {
			return dst
		}
		return append(dst, c.vals[4:]...)
	case schema.ConvBool:
		return strconv.AppendBool(dst, len(c.bools) > 0 && c.bools[0] == 1)
	case schema.ConvInt32, schema.ConvSfixed32, schema.ConvSint32, schema.ConvEnumInt:
		return strconv.AppendInt(dst, int64(int32(leUint32(c.vals))), 10)
	case schema.ConvFloat:
		return strconv.AppendFloat(dst, float64(math.Float32frombits(leUint32(c.vals))), 'g', -1, 32)
	case schema.ConvDouble:
		return strconv.AppendFloat(dst, math.Float64frombits(leUint64(c.vals)), 'g', -1, 64)
	case schema.ConvUint64Decimal, schema.ConvFixed64Decimal:
		if len(c.vals) < 9 {
			return dst
		}
		return strconv.AppendUint(dst, leUint64(reverse8(c.vals[1:9])), 10)
	}
	return strconv.AppendInt(dst, int64(leUint64(c.vals)), 10)
}

func reverse8(b []byte) []byte {
	var r [8]byte
	for i := range 8 {
		r[i] = b[7-i]
	}
	return r[:]
}

func leUint32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func leUint64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return uint64(leUint32(b)) | uint64(leUint32(b[4:]))<<32
}

// timeText is a partition column's last day or hour (bucket: its start in
// Unix microseconds divided by the unit) as appendTransformTime formats it.
type timeText struct {
	ok     bool
	bucket int64
	text   []byte
}

// appendTime is appendTransformTime for partition column i, formatting a
// day or an hour only when it differs from the column's last one.
func (w *Writer) appendTime(dst []byte, i int, t schema.Transform, ts time.Time) []byte {
	var unit int64
	switch t {
	case schema.Day:
		unit = 86_400_000_000
	case schema.Hour:
		unit = 3_600_000_000
	default:
		return appendTransformTime(dst, t, ts)
	}
	us := ts.UnixMicro()
	b := us / unit
	if us%unit < 0 {
		b-- // floor: before 1970
	}
	if len(w.ptime) <= i {
		w.ptime = append(w.ptime, make([]timeText, i+1-len(w.ptime))...)
	}
	c := &w.ptime[i]
	if !c.ok || c.bucket != b {
		c.ok, c.bucket, c.text = true, b, appendTransformTime(c.text[:0], t, ts)
	}
	return append(dst, c.text...)
}

func appendTransformTime(dst []byte, t schema.Transform, ts time.Time) []byte {
	switch t {
	case schema.Day:
		return ts.AppendFormat(dst, "2006-01-02")
	case schema.Hour:
		return ts.Truncate(time.Hour).AppendFormat(dst, "2006-01-02 15:04:05")
	}
	return ts.AppendFormat(dst, "2006-01-02 15:04:05.999999")
}
