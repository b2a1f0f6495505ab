package writer

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/protolake/protolake/schema"
)

// HiveNull is the path segment value of a null partition value.
const HiveNull = "__HIVE_DEFAULT_PARTITION__"

// route returns the open file of the row's partition, creating it.
func (w *Writer) route(frame int, k Kafka) (*openFile, error) {
	parts := w.plan.Partitions
	if len(parts) == 0 {
		if f := w.files[""]; f != nil {
			return f, nil
		}
		return w.open("", nil), nil
	}
	w.pvals = w.pvals[:0]
	key := w.keyBuf[:0]
	for i, p := range parts {
		v, null, err := w.partitionValue(p, frame, k)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			key = append(key, '/')
		}
		key = appendHiveEscaped(key, p.Name)
		key = append(key, '=')
		if null {
			key = append(key, HiveNull...)
			w.pvals = append(w.pvals, nil)
		} else {
			key = appendHiveEscaped(key, v)
			w.pvals = append(w.pvals, &v)
		}
	}
	w.keyBuf = key
	if f := w.files[string(key)]; f != nil {
		return f, nil
	}
	return w.open(string(key), append([]*string(nil), w.pvals...)), nil
}

func (w *Writer) open(key string, values []*string) *openFile {
	f := w.spare
	if f != nil {
		w.spare = nil
	} else {
		f = newOpenFile(w.layout)
	}
	f.key, f.values = key, values
	w.files[key] = f
	w.order = append(w.order, f)
	return f
}

// partitionValue computes one partition column's value in Delta's
// partition-value serialization.
func (w *Writer) partitionValue(p *schema.PartitionColumn, frame int, k Kafka) (string, bool, error) {
	if p.KafkaTimestamp {
		return transformTime(p.Transform, k.Timestamp.UTC()), false, nil
	}
	f := w.prog.fields[p.Field.Index]
	s := w.dec.slots[frame+f.slot]
	d := &w.dec
	if f.msgLeaf || f.kind == fkMessage { // a Timestamp (or a wrapper)
		if s.n == 0 {
			if f.presence == schema.Explicit {
				return "", true, nil
			}
		}
		// Decode the merged payload into a throwaway column.
		tmp := newColumn(&colSpec{kind: 2})
		saved := d.cols
		d.cols = make([]*column, f.col+1)
		col := f.col
		if col < 0 {
			col = 0
			d.cols = []*column{tmp}
		}
		d.cols[col] = tmp
		fcopy := *f
		fcopy.col = col
		var err error
		if s.n == 0 {
			err = d.msgLeafFrom(&fcopy, -1, false, 0, 0, 1)
		} else {
			err = d.msgLeafFrom(&fcopy, s.head, true, 0, 0, 1)
		}
		d.cols = saved
		if err != nil {
			return "", false, err
		}
		if f.p.Wrapper {
			return wrapperString(f, tmp), false, nil
		}
		micros := int64(leUint64(tmp.vals))
		if f.conv == schema.ConvTimestamp {
			t := time.UnixMicro(micros).UTC()
			if p.Transform == schema.Identity {
				return t.Format("2006-01-02 15:04:05.999999"), false, nil
			}
			return transformTime(p.Transform, t), false, nil
		}
		return strconv.FormatInt(micros, 10), false, nil
	}
	var v uint64
	var b []byte
	if s.n == 0 {
		if f.presence == schema.Explicit {
			return "", true, nil
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
	case schema.ConvString, schema.ConvBytes:
		if len(b) == 0 {
			// Delta (and Hive) cannot tell an empty partition value from
			// null: both are null.
			return "", true, nil
		}
	}
	switch f.conv {
	case schema.ConvString:
		if !utf8.Valid(b) {
			return "", false, d.fail(f.path, 0, ErrInvalidUTF8)
		}
		return string(b), false, nil
	case schema.ConvBytes:
		return string(b), false, nil
	case schema.ConvInt32, schema.ConvSfixed32, schema.ConvEnumInt:
		return strconv.FormatInt(int64(int32(v)), 10), false, nil
	case schema.ConvInt64, schema.ConvUint64Long, schema.ConvFixed64Long, schema.ConvSfixed64:
		return strconv.FormatInt(int64(v), 10), false, nil
	case schema.ConvUint32, schema.ConvFixed32:
		return strconv.FormatUint(uint64(uint32(v)), 10), false, nil
	case schema.ConvUint64Decimal, schema.ConvFixed64Decimal:
		return strconv.FormatUint(v, 10), false, nil
	case schema.ConvSint32:
		return strconv.FormatInt(int64(int32(protowire.DecodeZigZag(v&math.MaxUint32))), 10), false, nil
	case schema.ConvSint64:
		return strconv.FormatInt(protowire.DecodeZigZag(v), 10), false, nil
	case schema.ConvBool:
		return strconv.FormatBool(v != 0), false, nil
	case schema.ConvEnumString:
		if name, ok := f.enum.Name(protoreflect.EnumNumber(int32(v))); ok {
			return name, false, nil
		}
		return strconv.FormatInt(int64(int32(v)), 10), false, nil
	case schema.ConvFloat:
		return strconv.FormatFloat(float64(math.Float32frombits(uint32(v))), 'g', -1, 32), false, nil
	case schema.ConvDouble:
		return strconv.FormatFloat(math.Float64frombits(v), 'g', -1, 64), false, nil
	}
	return "", true, nil
}

func wrapperString(f *fprog, c *column) string {
	switch f.conv {
	case schema.ConvString, schema.ConvBytes:
		return string(c.vals[4:])
	case schema.ConvBool:
		return strconv.FormatBool(len(c.bools) > 0 && c.bools[0] == 1)
	case schema.ConvInt32, schema.ConvSfixed32, schema.ConvSint32:
		return strconv.FormatInt(int64(int32(leUint32(c.vals))), 10)
	case schema.ConvFloat:
		return strconv.FormatFloat(float64(math.Float32frombits(leUint32(c.vals))), 'g', -1, 32)
	case schema.ConvDouble:
		return strconv.FormatFloat(math.Float64frombits(leUint64(c.vals)), 'g', -1, 64)
	}
	return strconv.FormatInt(int64(leUint64(c.vals)), 10)
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

func transformTime(t schema.Transform, ts time.Time) string {
	switch t {
	case schema.Day:
		return ts.Format("2006-01-02")
	case schema.Hour:
		return ts.Truncate(time.Hour).Format("2006-01-02 15:04:05")
	}
	return ts.Format("2006-01-02 15:04:05.999999")
}

// appendHiveEscaped escapes a partition name or value the way Hive and Spark
// do in paths (ExternalCatalogUtils.escapePathName).
func appendHiveEscaped(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func needsEscape(c byte) bool {
	if c < 0x20 || c == 0x7f {
		return true
	}
	switch c {
	case '"', '#', '%', '\'', '*', '/', ':', '=', '?', '\\', '{', '[', ']', '^':
		return true
	}
	return false
}

// HiveEscape returns s escaped for a partition path segment.
func HiveEscape(s string) string { return string(appendHiveEscaped(nil, s)) }
