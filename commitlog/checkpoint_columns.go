package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// The column decoder reads the add actions of a checkpoint in the typed
// layout (protolake's and Spark's) column by column, page by page: no row
// structs, no reflection, no value per row on the heap. It is what makes a
// snapshot of a million files load in seconds and in about the size of its
// statistics strings:
//
//   - page buffers are returned to parquet-go's pool as soon as a page is
//     consumed, instead of a fresh buffer per page left to the collector;
//   - paths and stats are copied once, into large byte chunks (an arena),
//     not one allocation per string;
//   - the Adds of a row group are one slice, not one allocation each;
//   - equal partitionValues and tags maps share one map (a table has a few
//     distinct partition values per row group and one fingerprint tag);
//   - row groups are decoded in parallel (at most GOMAXPROCS at a time) and
//     applied in file order.
//
// Rows that are not adds (protocol, metaData, txn, remove, domainMetadata)
// take the row-struct reader, restricted to their columns, and only in the
// row groups where those columns hold a value.

// cpRest is cpRow without its add column: the row-struct reader of the
// column decoder reads only the columns that are not add's.
type cpRest struct {
	Txn            *cpTxn            `parquet:"txn,optional"`
	Remove         *cpRemove         `parquet:"remove,optional"`
	MetaData       *cpMetadata       `parquet:"metaData,optional"`
	Protocol       *cpProtocol       `parquet:"protocol,optional"`
	DomainMetadata *cpDomainMetadata `parquet:"domainMetadata,optional"`
}

// Definition levels of the typed layout's add columns (add is an optional
// group at the top, its fields optional; partitionValues and tags are
// optional maps of required keys and optional values).
const (
	defAdd      = 1 // the row is an add
	defAddField = 2 // path, size, modificationTime, dataChange, stats set
	defMap      = 2 // the map is set (possibly empty)
	defMapEntry = 3 // a key_value entry exists (its key is required)
	defMapValue = 4 // the entry's value is not null
)

// addLeaves are the leaf column indexes of the add fields decoded.
type addLeaves struct {
	path, size, modTime, dataChange, stats int
	pvKey, pvValue, tagKey, tagValue       int
}

// typedAddLeaves finds the add leaves in the typed schema.
func typedAddLeaves(pf *parquet.File) (addLeaves, error) {
	idx := map[string]int{}
	for i, p := range pf.Schema().Columns() {
		key := ""
		for j, s := range p {
			if j > 0 {
				key += "."
			}
			key += s
		}
		idx[key] = i
	}
	var l addLeaves
	for _, c := range []struct {
		dst  *int
		name string
	}{
		{&l.path, "add.path"}, {&l.size, "add.size"}, {&l.modTime, "add.modificationTime"},
		{&l.dataChange, "add.dataChange"}, {&l.stats, "add.stats"},
		{&l.pvKey, "add.partitionValues.key_value.key"}, {&l.pvValue, "add.partitionValues.key_value.value"},
		{&l.tagKey, "add.tags.key_value.key"}, {&l.tagValue, "add.tags.key_value.value"},
	} {
		i, ok := idx[c.name]
		if !ok {
			return l, fmt.Errorf("typed checkpoint layout has no column %s", c.name)
		}
		*c.dst = i
	}
	return l, nil
}

// parseColumns is parseTyped through the column decoder. f sees the
// actions of each row group in turn, the row groups in file order.
func parseColumns(pf *parquet.File, f func(Action)) error {
	leaves, err := typedAddLeaves(pf)
	if err != nil {
		return err
	}
	schemaLeaves := pf.Schema().Columns()
	rgs := pf.RowGroups()
	type result struct {
		adds []Add
		rest []Action
		err  error
		done chan struct{}
	}
	results := make([]result, len(rgs))
	for i := range results {
		results[i].done = make(chan struct{})
	}
	var stop atomic.Bool
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	go func() {
		for i, rg := range rgs {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				defer close(results[i].done)
				if stop.Load() {
					results[i].err = errors.New("stopped")
					return
				}
				results[i].adds, results[i].rest, results[i].err = decodeRowGroup(rg, pf.Metadata().RowGroups[i], schemaLeaves, leaves)
			}()
		}
	}()
	for i := range results {
		<-results[i].done
		r := results[i]
		results[i] = result{}
		if r.err != nil {
			// No decoder may read the file after the caller closes it.
			stop.Store(true)
			for j := i + 1; j < len(results); j++ {
				<-results[j].done
			}
			return fmt.Errorf("row group %d: %w", i, r.err)
		}
		for _, a := range r.rest {
			f(a)
		}
		for j := range r.adds {
			f(Action{Add: &r.adds[j]})
		}
	}
	return nil
}

// decodeRowGroup decodes one row group: its adds through the columns, the
// other actions through the row-struct reader. A panic of the Parquet
// decoder (corrupt input) is returned as an error.
func decodeRowGroup(rg parquet.RowGroup, md format.RowGroup, schemaLeaves [][]string, leaves addLeaves) (adds []Add, rest []Action, err error) {
	defer func() {
		if r := recover(); r != nil {
			adds, rest, err = nil, nil, fmt.Errorf("parquet decoder failed: %v", r)
		}
	}()
	// A column chunk whose statistics say it is all nulls is not read.
	hasAdd, hasRest := false, false
	for i, cc := range md.Columns {
		if n := cc.MetaData.Statistics.NullCount; i < len(schemaLeaves) && n >= 0 && n == cc.MetaData.NumValues {
			continue
		}
		if i < len(schemaLeaves) && schemaLeaves[i][0] == "add" {
			hasAdd = true
		} else {
			hasRest = true
		}
	}
	if hasRest {
		if rest, err = decodeRest(rg); err != nil {
			return nil, nil, err
		}
	}
	if hasAdd {
		if adds, err = decodeAdds(rg, leaves); err != nil {
			return nil, nil, err
		}
	}
	return adds, rest, nil
}

// decodeRest reads the non-add actions of a row group with the row-struct
// reader (they are few: protocol, metaData, txns, tombstones).
func decodeRest(rg parquet.RowGroup) ([]Action, error) {
	r := parquet.NewGenericRowGroupReader[cpRest](rg)
	defer r.Close()
	rows := make([]cpRest, 256)
	var out []Action
	for {
		clear(rows)
		n, err := r.Read(rows)
		for i := 0; i < n; i++ {
			c := &rows[i]
			a, ok, cerr := typedAction(&cpRow{Txn: c.Txn, Remove: c.Remove, MetaData: c.MetaData, Protocol: c.Protocol, DomainMetadata: c.DomainMetadata})
			if cerr != nil {
				return nil, cerr
			}
			if ok {
				out = append(out, a)
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// errColumnShape is a column whose levels do not fit the typed layout.
var errColumnShape = errors.New("checkpoint column does not match the typed layout")

// decodeAdds decodes the add columns of a row group into one slice of
// Adds, one per row that is an add, in row order.
func decodeAdds(rg parquet.RowGroup, l addLeaves) ([]Add, error) {
	nrows := int(rg.NumRows())
	if nrows < 0 {
		return nil, errColumnShape
	}
	chunks := rg.ColumnChunks()
	d := addDecoder{values: make([]parquet.Value, 1024)}
	// rowOf[row] is the index of the row's Add, or -1 when it is no add.
	// Both grow with the values actually decoded: a row count in corrupt
	// metadata is not an allocation size.
	rowOf := make([]int32, 0, min(nrows, initialRows))
	adds := make([]Add, 0, min(nrows, initialRows))
	row := 0
	err := d.each(chunks[l.path], func(v *parquet.Value) error {
		if row >= nrows {
			return errColumnShape
		}
		switch v.DefinitionLevel() {
		case 0:
			rowOf = append(rowOf, -1)
		case defAddField:
			rowOf = append(rowOf, int32(len(adds)))
			adds = append(adds, Add{Path: d.str(v.ByteArray())})
		default: // an add without a path
			return errors.New("add action without a path")
		}
		row++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add.path: %w", err)
	}
	if row != nrows {
		return nil, fmt.Errorf("add.path: %d values for %d rows: %w", row, nrows, errColumnShape)
	}
	// scalar runs f for each add row's value of a one-value-per-row column.
	scalar := func(name string, cc parquet.ColumnChunk, f func(a *Add, v *parquet.Value)) error {
		row := 0
		err := d.each(cc, func(v *parquet.Value) error {
			if row >= nrows {
				return errColumnShape
			}
			if i := rowOf[row]; i >= 0 && v.DefinitionLevel() == defAddField {
				f(&adds[i], v)
			} else if i < 0 && v.DefinitionLevel() != 0 {
				return errColumnShape
			}
			row++
			return nil
		})
		if err == nil && row != nrows {
			err = errColumnShape
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	for _, c := range []struct {
		name string
		cc   parquet.ColumnChunk
		f    func(a *Add, v *parquet.Value)
	}{
		{"add.size", chunks[l.size], func(a *Add, v *parquet.Value) { a.Size = v.Int64() }},
		{"add.modificationTime", chunks[l.modTime], func(a *Add, v *parquet.Value) { a.ModificationTime = v.Int64() }},
		{"add.dataChange", chunks[l.dataChange], func(a *Add, v *parquet.Value) { a.DataChange = v.Boolean() }},
		{"add.stats", chunks[l.stats], func(a *Add, v *parquet.Value) { a.Stats = d.str(v.ByteArray()) }},
	} {
		if err := scalar(c.name, c.cc, c.f); err != nil {
			return nil, err
		}
	}
	pv, err := d.maps(chunks[l.pvKey], chunks[l.pvValue], rowOf, nrows)
	if err != nil {
		return nil, fmt.Errorf("add.partitionValues: %w", err)
	}
	empty := map[string]*string{} // a null partitionValues reads as {}
	for i := range adds {
		if adds[i].PartitionValues = pv.ptrMap(i); adds[i].PartitionValues == nil {
			adds[i].PartitionValues = empty
		}
	}
	tags, err := d.maps(chunks[l.tagKey], chunks[l.tagValue], rowOf, nrows)
	if err != nil {
		return nil, fmt.Errorf("add.tags: %w", err)
	}
	for i := range adds {
		adds[i].Tags = tags.strMap(i)
	}
	return adds, nil
}

// initialRows bounds the rows a row group's buffers are first sized for.
const initialRows = 1 << 16

// addDecoder holds the buffers of one row group's decoding.
type addDecoder struct {
	values []parquet.Value
	chunk  []byte // arena: the tail of the current chunk
}

// arenaChunk is the size of the byte chunks paths and stats are copied
// into. A chunk stays allocated while any file whose strings it holds is
// in a live snapshot, so it is kept small next to a table (a few hundred
// files' stats) and large next to one stats string.
const arenaChunk = 1 << 20

// str copies b into the arena and returns it as a string. The arena's
// bytes are never written again once handed out, which is what makes the
// string immutable.
func (d *addDecoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > cap(d.chunk)-len(d.chunk) {
		if len(b) > arenaChunk/4 {
			return string(b)
		}
		d.chunk = make([]byte, 0, arenaChunk)
	}
	off := len(d.chunk)
	d.chunk = append(d.chunk, b...)
	return unsafe.String(&d.chunk[off], len(b))
}

// each calls f for every value of a column chunk, page by page, giving
// each page's buffers back to the pool once it is read.
func (d *addDecoder) each(cc parquet.ColumnChunk, f func(v *parquet.Value) error) error {
	pages := cc.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		err = d.eachOfPage(p, f)
		parquet.Release(p)
		if err != nil {
			return err
		}
	}
}

func (d *addDecoder) eachOfPage(p parquet.Page, f func(v *parquet.Value) error) error {
	vr := p.Values()
	for {
		n, err := vr.ReadValues(d.values)
		for i := 0; i < n; i++ {
			if ferr := f(&d.values[i]); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return errors.New("page reader made no progress")
		}
	}
}

// rowMaps are the maps of a map column, one per add: rows share equal
// maps. A nil entry is a null map.
type rowMaps struct {
	ptr []map[string]*string
	str []map[string]string
}

func (m *rowMaps) ptrMap(i int) map[string]*string { return m.ptr[i] }
func (m *rowMaps) strMap(i int) map[string]string  { return m.str[i] }

// maps decodes a map column (its key and value leaves) for every add row.
// Equal maps are one shared map, in both forms: map[string]*string
// (partitionValues, null values kept) and map[string]string (tags, a null
// value read as ""). A null partitionValues reads as an empty map and a
// null tags as nil, as the row decoder does.
func (d *addDecoder) maps(keys, vals parquet.ColumnChunk, rowOf []int32, nrows int) (*rowMaps, error) {
	// An entry is one key_value element (or the one placeholder of a row
	// whose map is null or empty); its key and value are offsets into buf,
	// which is all the map bytes of the row group.
	type entry struct {
		row       int32
		def       int8
		null      bool
		key, kend uint32 // the key: buf[key:kend]
		val, vend uint32 // the value: buf[val:vend]
	}
	var buf []byte
	add := func(b []byte) (uint32, error) {
		if len(buf)+len(b) > math.MaxUint32 {
			return 0, errColumnShape
		}
		buf = append(buf, b...)
		return uint32(len(buf)), nil
	}
	entries := make([]entry, 0, min(nrows, initialRows))
	row := -1
	err := d.each(keys, func(v *parquet.Value) error {
		if v.RepetitionLevel() == 0 {
			row++
		}
		if row < 0 || row >= nrows {
			return errColumnShape
		}
		e := entry{row: int32(row), def: int8(v.DefinitionLevel()), key: uint32(len(buf)), kend: uint32(len(buf))}
		if e.def >= defMapEntry {
			var err error
			if e.kend, err = add(v.ByteArray()); err != nil {
				return err
			}
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if row != nrows-1 {
		return nil, errColumnShape
	}
	i := 0
	err = d.each(vals, func(v *parquet.Value) error {
		if i >= len(entries) || (v.RepetitionLevel() == 0) != (i == 0 || entries[i].row != entries[i-1].row) {
			return errColumnShape
		}
		e := &entries[i]
		switch def := v.DefinitionLevel(); {
		case def == defMapValue:
			e.val = uint32(len(buf))
			var err error
			if e.vend, err = add(v.ByteArray()); err != nil {
				return err
			}
		case def == defMapEntry:
			e.null = true
		case int8(def) != e.def:
			return errColumnShape
		}
		i++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if i != len(entries) {
		return nil, errColumnShape
	}
	n := 0
	for _, r := range rowOf {
		if r >= 0 {
			n++
		}
	}
	out := &rowMaps{ptr: make([]map[string]*string, n), str: make([]map[string]string, n)}
	type shared struct {
		ptr map[string]*string
		str map[string]string
	}
	interned := map[string]shared{}
	var sig []byte
	for j := 0; j < len(entries); {
		r := entries[j].row
		k := j
		for k < len(entries) && entries[k].row == r {
			k++
		}
		idx := rowOf[r]
		if idx < 0 {
			if entries[j].def != 0 {
				return nil, errColumnShape
			}
			j = k
			continue
		}
		switch entries[j].def {
		case defAdd: // null map
			j = k
			continue
		case defMap: // empty map
			if k-j != 1 {
				return nil, errColumnShape
			}
		case defMapEntry:
		default:
			return nil, errColumnShape
		}
		// The signature of the map: its entries in order, length-prefixed.
		sig = sig[:0]
		for _, e := range entries[j:k] {
			if e.def < defMapEntry {
				break
			}
			key, val := buf[e.key:e.kend], buf[e.val:e.vend]
			sig = binary.AppendUvarint(sig, uint64(len(key)))
			sig = append(sig, key...)
			if e.null {
				sig = append(sig, 0)
			} else {
				sig = binary.AppendUvarint(sig, uint64(len(val))+1)
				sig = append(sig, val...)
			}
		}
		m, ok := interned[string(sig)]
		if !ok {
			m = shared{ptr: map[string]*string{}, str: map[string]string{}}
			for _, e := range entries[j:k] {
				if e.def < defMapEntry {
					break
				}
				key := string(buf[e.key:e.kend])
				if e.null {
					m.ptr[key] = nil
					m.str[key] = ""
				} else {
					s := string(buf[e.val:e.vend])
					m.ptr[key] = &s
					m.str[key] = s
				}
			}
			interned[string(sig)] = m
		}
		out.ptr[idx], out.str[idx] = m.ptr, m.str
		j = k
	}
	return out, nil
}
