package writer

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/protolake/protolake/commitlog"
)

// Stats are a data file's Delta statistics, as commitlog.FileStats (the one
// type of an add's stats, which compaction merges and the log decodes):
// nested like the table's struct shape, for the first StatsLeafLimit leaf
// columns (arrays and maps count as one leaf and get a null count only;
// booleans and binaries get a null count only). Strings are cut to 32
// characters (the max then ends with U+10FFFF so it stays an upper bound),
// timestamps are truncated to milliseconds like Spark does, and float
// columns holding a NaN get no min/max. Its JSON method is the add's
// stats string.
type Stats = commitlog.FileStats

// StringPrefix is the number of characters of string statistics.
const StringPrefix = 32

func (w *Writer) fileStats(f *openFile) *Stats {
	rows := f.rows
	s := &Stats{NumRecords: &rows, MinValues: map[string]any{}, MaxValues: map[string]any{}, NullCount: map[string]any{}}
	for _, sf := range w.layout.stats {
		w.fillStats(f, sf, s.MinValues, s.MaxValues, s.NullCount)
	}
	return s
}

func (w *Writer) fillStats(f *openFile, sf *statField, mins, maxs, nulls map[string]any) {
	if sf.col < 0 {
		cmin, cmax, cnull := map[string]any{}, map[string]any{}, map[string]any{}
		for _, c := range sf.children {
			w.fillStats(f, c, cmin, cmax, cnull)
		}
		if len(cmin) > 0 {
			mins[sf.name] = cmin
		}
		if len(cmax) > 0 {
			maxs[sf.name] = cmax
		}
		if len(cnull) > 0 {
			nulls[sf.name] = cnull
		}
		return
	}
	c := f.cols[sf.col]
	if sf.array {
		nulls[sf.name] = f.arrNull[sf.col]
		return
	}
	nulls[sf.name] = c.stats.nullCount
	if !sf.minMax || !c.stats.has || (c.stats.nan && isFloat(c.spec)) {
		return
	}
	mn, mx, ok := deltaValue(sf, c, c.stats.min, false), deltaValue(sf, c, c.stats.max, true), true
	if mn == nil || mx == nil {
		ok = false
	}
	if ok {
		mins[sf.name], maxs[sf.name] = mn, mx
	}
}

// deltaValue converts a PLAIN-encoded bound to its Delta JSON value.
func deltaValue(sf *statField, c *column, b []byte, isMax bool) any {
	switch sf.delta {
	case deltaInt:
		if c.spec.kind == 1 { // INT32
			return int64(int32(binary.LittleEndian.Uint32(b)))
		}
		return int64(binary.LittleEndian.Uint64(b))
	case deltaFloat:
		var v float64
		if c.spec.kind == 4 {
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		} else {
			v = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		if math.IsInf(v, 0) {
			return nil // not representable in JSON
		}
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64))
	case deltaString:
		t, ok := truncString(string(b), isMax)
		if !ok {
			return nil
		}
		return t
	case deltaTimestamp:
		us := int64(binary.LittleEndian.Uint64(b))
		ms := us / 1000
		if us%1000 < 0 {
			ms--
		}
		return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
	case deltaDate:
		days := int64(int32(binary.LittleEndian.Uint32(b)))
		return time.Unix(days*86400, 0).UTC().Format("2006-01-02")
	case deltaDecimal:
		n := new(big.Int).SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 { // negative two's complement
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		if sf.scale == 0 {
			return json.Number(n.String())
		}
		r := new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(sf.scale)), nil))
		return json.Number(r.FloatString(sf.scale))
	}
	return nil
}

// truncString cuts s to StringPrefix characters. A cut min is the prefix;
// a cut max must stay an upper bound of s in UTF-8 byte order (how Spark,
// delta-rs and Parquet compare strings): the prefix followed by U+10FFFF
// when the first character cut off is below U+10FFFF, else the prefix up
// to its last character that can be incremented, incremented. ok is false
// when no bound of at most StringPrefix+1 characters exists (s starts with
// StringPrefix+1 U+10FFFF): the column then has no max statistic.
func truncString(s string, isMax bool) (_ string, ok bool) {
	n := 0
	for i, c := range s {
		if n < StringPrefix {
			n++
			continue
		}
		if !isMax {
			return s[:i], true
		}
		if c != utf8.MaxRune {
			return s[:i] + string(utf8.MaxRune), true
		}
		p := s[:i]
		for len(p) > 0 {
			last, size := utf8.DecodeLastRuneInString(p)
			p = p[:len(p)-size]
			if last == utf8.MaxRune {
				continue
			}
			last++
			if last >= 0xD800 && last <= 0xDFFF { // no surrogates in UTF-8
				last = 0xE000
			}
			return p + string(last), true
		}
		return "", false
	}
	return s, true
}
