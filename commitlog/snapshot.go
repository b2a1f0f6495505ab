package commitlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"slices"
	"sort"

	"github.com/protolake/protolake/storage"
	"golang.org/x/sync/errgroup"
)

// Reader is the part of a store that reading a table needs.
// storage.Store implementations satisfy it.
type Reader interface {
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	List(ctx context.Context, prefix string) ([]storage.Object, error)
}

// Snapshot is the state of a table at one version: its protocol, metadata,
// active files, tombstones and txn watermarks. It is immutable.
type Snapshot struct {
	version           int64
	checkpointVersion int64
	checkpointID      string    // checkpointID of the checkpoint loaded from
	checkpointMD      *Metadata // metaData as of the checkpoint loaded from
	protocol          Protocol
	metadata          Metadata
	hasProtocol       bool
	hasMetadata       bool
	files             cowMap[*Add]    // decoded path → add
	tombstones        cowMap[*Remove] // decoded path → remove
	txns              map[string]Txn
	domains           map[string]RawAction
	latestCommitTime  int64
}

// Version is the table version this snapshot reflects.
func (s *Snapshot) Version() int64 { return s.version }

// CheckpointVersion is the version of the checkpoint the snapshot was
// loaded from, or -1 when it was replayed from commit 0.
func (s *Snapshot) CheckpointVersion() int64 { return s.checkpointVersion }

// CheckpointMetadata is the metaData as of the checkpoint the snapshot was
// loaded from (see CheckpointVersion), and false when it was replayed from
// commit 0. It lets a reader know the table's proto pin at the checkpoint
// without reading the commits before it.
func (s *Snapshot) CheckpointMetadata() (Metadata, bool) {
	if s.checkpointMD == nil {
		return Metadata{}, false
	}
	return *s.checkpointMD, true
}

// Protocol is the table's protocol.
func (s *Snapshot) Protocol() Protocol { return s.protocol }

// Metadata is the table's current metaData.
func (s *Snapshot) Metadata() Metadata { return s.metadata }

// NumFiles is the number of active data files.
func (s *Snapshot) NumFiles() int { return s.files.len() }

// TotalSize is the sum of the sizes of the active data files.
func (s *Snapshot) TotalSize() int64 {
	var n int64
	s.files.each(func(_ string, a *Add) { n += a.Size })
	return n
}

// NumRecords is the sum of stats.numRecords over the active files, and
// false when any file lacks that statistic.
func (s *Snapshot) NumRecords() (int64, bool) {
	var n int64
	for _, a := range s.files.values() {
		c, ok := statsNumRecords(a.Stats)
		if !ok {
			return 0, false
		}
		n += c
	}
	return n, true
}

// Files returns the active files sorted by path (as written in the log).
// The returned values are copies; their maps (PartitionValues, Tags) are
// shared with the snapshot and other files and must not be modified.
func (s *Snapshot) Files() []Add {
	files := s.sortedFiles()
	out := make([]Add, len(files))
	for i, a := range files {
		out[i] = *a
	}
	return out
}

// sortedFiles returns the active files sorted by path, without copying
// them (callers must not change them).
func (s *Snapshot) sortedFiles() []*Add {
	out := s.files.values()
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// sortedTombstones is sortedFiles for the tombstones.
func (s *Snapshot) sortedTombstones() []*Remove {
	out := s.tombstones.values()
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// HasFile reports whether the file at path (encoded or decoded) is active.
func (s *Snapshot) HasFile(path string) bool {
	_, ok := s.files.get(decodePath(path))
	return ok
}

// Tombstones returns the remove actions still remembered (not yet expired
// from a checkpoint), sorted by path.
func (s *Snapshot) Tombstones() []Remove {
	rs := s.sortedTombstones()
	out := make([]Remove, len(rs))
	for i, r := range rs {
		out[i] = *r
	}
	return out
}

// Txns returns the latest txn version per appId.
func (s *Snapshot) Txns() map[string]int64 {
	out := make(map[string]int64, len(s.txns))
	for k, t := range s.txns {
		out[k] = t.Version
	}
	return out
}

// TxnVersion returns the latest version committed by appID, and false when
// the application never committed.
func (s *Snapshot) TxnVersion(appID string) (int64, bool) {
	t, ok := s.txns[appID]
	return t.Version, ok
}

// DomainMetadata returns the live domainMetadata actions, verbatim.
func (s *Snapshot) DomainMetadata() []RawAction {
	keys := make([]string, 0, len(s.domains))
	for k := range s.domains {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]RawAction, len(keys))
	for i, k := range keys {
		out[i] = s.domains[k]
	}
	return out
}

// hasURIScheme reports whether p starts with the scheme of an absolute URI
// ("file:", "s3a:"; RFC 3986: a letter, then letters, digits, '+', '-' or
// '.', then ':'); a relative Delta path cannot (':' in its first segment is
// escaped). A scan, not a regexp: it runs for every file of a loaded
// snapshot.
func hasURIScheme(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return true
		default:
			return false
		}
	}
	return false
}

// checkFilePath refuses a log path that could resolve outside the table
// root: an absolute URI or path, or one whose decoded form is not a plain
// relative store key.
func checkFilePath(p string) error {
	if hasURIScheme(p) {
		return fmt.Errorf("%w: %q is an absolute URI (protolake reads only files under the table root)", ErrPathOutsideTable, p)
	}
	if err := storage.CheckKey(decodePath(p)); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrPathOutsideTable, p, err)
	}
	return nil
}

// checkActionPath applies checkFilePath to an add or remove.
func checkActionPath(a Action) error {
	switch {
	case a.Add != nil:
		return checkFilePath(a.Add.Path)
	case a.Remove != nil:
		return checkFilePath(a.Remove.Path)
	}
	return nil
}

// decodePath is the reconciliation key of a file: the log stores URI-encoded
// paths, and the same file's add and remove may be encoded differently.
func decodePath(p string) string {
	if d, err := url.PathUnescape(p); err == nil {
		return d
	}
	return p
}

// clone returns a copy that apply can change without affecting s, which
// must be frozen (published). It costs O(txns + domains + cowShards), not
// O(files): the file maps are shared copy-on-write.
func (s *Snapshot) clone() *Snapshot {
	c := *s
	c.files = s.files.clone()
	c.tombstones = s.tombstones.clone()
	c.txns = make(map[string]Txn, len(s.txns))
	for k, v := range s.txns {
		c.txns[k] = v
	}
	c.domains = make(map[string]RawAction, len(s.domains))
	for k, v := range s.domains {
		c.domains[k] = v
	}
	return &c
}

func newSnapshot() *Snapshot {
	return &Snapshot{
		version:           -1,
		checkpointVersion: -1,
		files:             newCowMap[*Add](),
		tombstones:        newCowMap[*Remove](),
		txns:              map[string]Txn{},
		domains:           map[string]RawAction{},
	}
}

// freeze publishes the snapshot: from now on it is read-only and may be
// cloned.
func (s *Snapshot) freeze() *Snapshot {
	s.files.freeze()
	s.tombstones.freeze()
	return s
}

// apply replays one action onto the snapshot.
func (s *Snapshot) apply(a Action) {
	switch {
	case a.Add != nil:
		k := decodePath(a.Add.Path)
		s.files.set(k, a.Add)
		s.tombstones.delete(k)
	case a.Remove != nil:
		k := decodePath(a.Remove.Path)
		s.files.delete(k)
		s.tombstones.set(k, a.Remove)
	case a.Txn != nil:
		s.txns[a.Txn.AppID] = *a.Txn
	case a.Protocol != nil:
		s.protocol, s.hasProtocol = *a.Protocol, true
	case a.Metadata != nil:
		s.metadata, s.hasMetadata = *a.Metadata, true
	case a.CommitInfo != nil:
		s.latestCommitTime = a.CommitInfo.Timestamp
	case a.Other != nil && a.Other.Name == "domainMetadata":
		var d struct {
			Domain  string `json:"domain"`
			Removed bool   `json:"removed"`
		}
		if json.Unmarshal(a.Other.JSON, &d) == nil && d.Domain != "" {
			if d.Removed {
				delete(s.domains, d.Domain)
			} else {
				s.domains[d.Domain] = *a.Other
			}
		}
	}
}

// logListing is the parsed content of _delta_log.
type logListing struct {
	commits     map[int64]logFile
	checkpoints map[int64][]logFile // complete checkpoints only, parts in order
	latest      int64
}

func listLog(ctx context.Context, r Reader) (*logListing, error) {
	objs, err := r.List(ctx, LogDir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", LogDir, err)
	}
	return parseListing(objs), nil
}

// listBlock is how many versions one narrow listing covers.
const listBlock = 100

// listLogFrom lists only the log entries of versions >= from (and the rest
// of from's block of 100): one List per block of 100 versions, continuing
// while a block is full. A log of months of commits is not listed whole to
// find the few commits after the last checkpoint.
func listLogFrom(ctx context.Context, r Reader, from int64) (*logListing, error) {
	var all []storage.Object
	for block := from / listBlock; ; block++ {
		prefix := LogDir + fmt.Sprintf("%020d", block*listBlock)[:20-2]
		objs, err := r.List(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		all = append(all, objs...)
		full := false
		for _, o := range objs {
			if lf := parseLogFileName(o.Key); lf.kind == kindCommit && lf.version == block*listBlock+listBlock-1 {
				full = true
			}
		}
		if !full {
			break
		}
	}
	l := parseListing(all)
	for v := range l.commits {
		if v < from {
			delete(l.commits, v)
		}
	}
	for v := range l.checkpoints {
		if v < from {
			delete(l.checkpoints, v)
		}
	}
	return l, nil
}

func parseListing(objs []storage.Object) *logListing {
	l := &logListing{commits: map[int64]logFile{}, checkpoints: map[int64][]logFile{}, latest: -1}
	// multi-part sets by (version, parts)
	type setKey struct {
		v     int64
		parts int
	}
	sets := map[setKey]map[int]logFile{}
	for _, o := range objs {
		lf := parseLogFileName(o.Key)
		lf.size = o.Size
		switch lf.kind {
		case kindCommit:
			l.commits[lf.version] = lf
		case kindCheckpoint:
			l.checkpoints[lf.version] = []logFile{lf}
		case kindCheckpointPart:
			k := setKey{lf.version, lf.parts}
			if sets[k] == nil {
				sets[k] = map[int]logFile{}
			}
			sets[k][lf.part] = lf
		}
	}
	for k, parts := range sets {
		if len(parts) != k.parts {
			continue // incomplete multi-part checkpoint: ignore
		}
		if _, ok := l.checkpoints[k.v]; ok {
			continue // prefer the single-file (or an already found) checkpoint
		}
		files := make([]logFile, k.parts)
		for i := 1; i <= k.parts; i++ {
			files[i-1] = parts[i]
		}
		l.checkpoints[k.v] = files
	}
	for v := range l.commits {
		l.latest = max(l.latest, v)
	}
	for v := range l.checkpoints {
		l.latest = max(l.latest, v)
	}
	return l
}

// LoadOptions tunes snapshot loading. The zero value is valid.
type LoadOptions struct {
	// Logger receives warnings (an unreadable checkpoint that was skipped).
	// Default: discard.
	Logger *slog.Logger
	// Concurrency bounds parallel reads of commit files. Default 8.
	Concurrency int
}

// Latest asks LoadSnapshot for the newest version.
const Latest int64 = -1

// LoadSnapshot reconstructs the table at version (or the newest version when
// version is Latest): the newest complete checkpoint at or below it, then the
// JSON commits after it. For the latest version, _last_checkpoint is used to
// list only the log entries from its checkpoint on; when it is missing,
// corrupt, names a checkpoint that does not exist, or that load fails, the
// whole of _delta_log is listed instead, so the hint can save work but never
// mislead. An unreadable checkpoint is skipped in favour of an older one or a
// replay from commit 0.
// It returns ErrNoTable when there is no log and ErrVersionNotFound (wrapped)
// when the version does not exist or cannot be reconstructed.
func LoadSnapshot(ctx context.Context, r Reader, version int64, opts LoadOptions) (*Snapshot, error) {
	if version == Latest {
		// Fast path: list only from the checkpoint _last_checkpoint names,
		// if it names one that exists and loads.
		if lc, err := ReadLastCheckpoint(ctx, r); err == nil {
			if l, err := listLogFrom(ctx, r, lc.Version); err == nil && l.checkpoints[lc.Version] != nil {
				s, err := loadFromListing(ctx, r, l, Latest, opts)
				if err == nil {
					return s, nil
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
			}
		}
	}
	l, err := listLog(ctx, r)
	if err != nil {
		return nil, err
	}
	return loadFromListing(ctx, r, l, version, opts)
}

func loadFromListing(ctx context.Context, r Reader, l *logListing, version int64, opts LoadOptions) (*Snapshot, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if l.latest < 0 {
		return nil, ErrNoTable
	}
	target := version
	if target == Latest {
		target = l.latest
	}
	if target < 0 || target > l.latest {
		return nil, fmt.Errorf("version %d: %w (latest is %d)", version, ErrVersionNotFound, l.latest)
	}
	var cps []int64
	for v := range l.checkpoints {
		if v <= target {
			cps = append(cps, v)
		}
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i] > cps[j] })
	cps = append(cps, -1) // replay from commit 0
	var lastErr error
	for _, cp := range cps {
		if missing := firstMissing(l, cp+1, target); missing >= 0 {
			lastErr = fmt.Errorf("version %d cannot be reconstructed: commit %d is missing: %w", target, missing, ErrVersionNotFound)
			continue
		}
		s := newSnapshot()
		if cp >= 0 {
			if err := loadCheckpoint(ctx, r, l.checkpoints[cp], s); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				logger.Warn("skipping unreadable checkpoint", "version", cp, "err", err)
				lastErr = fmt.Errorf("checkpoint %d: %w", cp, err)
				continue
			}
			s.checkpointVersion = cp
			s.checkpointID = checkpointID(l.checkpoints[cp])
			if s.hasMetadata {
				md := s.metadata
				s.checkpointMD = &md
			}
		}
		if err := replayCommits(ctx, r, cp+1, target, s, opts.Concurrency); err != nil {
			return nil, err
		}
		s.version = target
		if !s.hasProtocol || !s.hasMetadata {
			return nil, fmt.Errorf("version %d: log has no protocol or metaData action: %w", target, ErrCorrupt)
		}
		return s.freeze(), nil
	}
	return nil, lastErr
}

// firstMissing returns the first version in [from, to] without a commit
// file, or -1.
func firstMissing(l *logListing, from, to int64) int64 {
	for v := from; v <= to; v++ {
		if _, ok := l.commits[v]; !ok {
			return v
		}
	}
	return -1
}

func loadCheckpoint(ctx context.Context, r Reader, parts []logFile, s *Snapshot) error {
	for _, p := range parts {
		var pathErr error
		err := readCheckpointPart(ctx, r, p, func(a Action) {
			if err := checkActionPath(a); err != nil && pathErr == nil {
				pathErr = err
			}
			s.apply(a)
		})
		if err == nil {
			err = pathErr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.key, err)
		}
	}
	return nil
}

// fileReader is what a store's Get returns for a file on disk (storage/local
// returns an *os.File): it can be read at offsets, and knows its size.
type fileReader interface {
	io.ReaderAt
	Stat() (fs.FileInfo, error)
}

// readCheckpointPart parses one checkpoint file. A file the store serves
// from disk is read in place, page by page (a checkpoint of millions of
// files is hundreds of megabytes); any other is read into memory first.
func readCheckpointPart(ctx context.Context, r Reader, p logFile, f func(Action)) error {
	rc, err := r.Get(ctx, p.key)
	if err != nil {
		return fmt.Errorf("read %s: %w", p.key, err)
	}
	defer rc.Close()
	if fr, ok := rc.(fileReader); ok {
		if fi, err := fr.Stat(); err == nil && fi.Mode().IsRegular() {
			return parseCheckpointAt(fr, fi.Size(), f)
		}
	}
	data, err := readSizedFrom(rc, p.key, p.size)
	if err != nil {
		return err
	}
	return parseCheckpointAt(bytes.NewReader(data), int64(len(data)), f)
}

// replayCommits reads commits [from, to] (in parallel) and applies them in
// order.
func replayCommits(ctx context.Context, r Reader, from, to int64, s *Snapshot, concurrency int) error {
	if from > to {
		return nil
	}
	n := int(to - from + 1)
	if concurrency <= 0 {
		concurrency = 8
	}
	results := make([][]Action, n)
	errs := make([]error, n)
	// Every commit is read (no early cancel) and the error of the lowest
	// version wins, so the error does not depend on scheduling.
	var g errgroup.Group
	g.SetLimit(concurrency)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			results[i], errs[i] = readCommit(ctx, r, from+int64(i))
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through errs
	var in mapInterner
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			return errs[i]
		}
		for _, a := range results[i] {
			if a.Add != nil {
				in.add(a.Add)
			}
			s.apply(a)
		}
		results[i] = nil
	}
	return nil
}

// mapInterner makes the adds of a replay share equal partitionValues and
// tags maps, as the files decoded from a checkpoint do: a table has few
// distinct partition values and one fingerprint tag, and a map per file
// costs hundreds of bytes.
type mapInterner struct {
	pv   map[string]map[string]*string
	tags map[string]map[string]string
	sig  []byte
	keys []string
}

// signature encodes a map's entries, sorted by key, length-prefixed; get
// returns an entry's value and whether it is null.
func (m *mapInterner) signature(keys []string, get func(k string) (string, bool)) []byte {
	slices.Sort(keys)
	m.sig = m.sig[:0]
	for _, k := range keys {
		m.sig = binary.AppendUvarint(m.sig, uint64(len(k)))
		m.sig = append(m.sig, k...)
		v, null := get(k)
		if null {
			m.sig = append(m.sig, 0)
			continue
		}
		m.sig = binary.AppendUvarint(m.sig, uint64(len(v))+1)
		m.sig = append(m.sig, v...)
	}
	return m.sig
}

// add replaces a's maps with the shared equal ones (a's own become the
// shared ones when they are the first of their kind).
func (m *mapInterner) add(a *Add) {
	if pv := a.PartitionValues; pv != nil {
		m.keys = m.keys[:0]
		for k := range pv {
			m.keys = append(m.keys, k)
		}
		sig := m.signature(m.keys, func(k string) (string, bool) {
			if v := pv[k]; v != nil {
				return *v, false
			}
			return "", true
		})
		if shared, ok := m.pv[string(sig)]; ok {
			a.PartitionValues = shared
		} else {
			if m.pv == nil {
				m.pv = map[string]map[string]*string{}
			}
			m.pv[string(sig)] = pv
		}
	}
	if tags := a.Tags; tags != nil {
		m.keys = m.keys[:0]
		for k := range tags {
			m.keys = append(m.keys, k)
		}
		sig := m.signature(m.keys, func(k string) (string, bool) { return tags[k], false })
		if shared, ok := m.tags[string(sig)]; ok {
			a.Tags = shared
		} else {
			if m.tags == nil {
				m.tags = map[string]map[string]string{}
			}
			m.tags[string(sig)] = tags
		}
	}
}

// readCommit reads and parses the commit file for version v.
func readCommit(ctx context.Context, r Reader, v int64) ([]Action, error) {
	data, err := readAll(ctx, r, CommitKey(v))
	if err != nil {
		return nil, err
	}
	actions, err := ParseCommit(data)
	if err != nil {
		return nil, &CorruptError{Key: CommitKey(v), Err: err}
	}
	return actions, nil
}

func readAll(ctx context.Context, r Reader, key string) ([]byte, error) {
	rc, err := r.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return data, nil
}

// readSizedFrom reads an opened object whose size the listing gave: one
// buffer of that size instead of a doubling one (a checkpoint of millions
// of files is hundreds of megabytes). A size that turns out wrong only
// costs the growth.
func readSizedFrom(rc io.Reader, key string, size int64) ([]byte, error) {
	if size <= 0 || size > 1<<40 {
		data, err := io.ReadAll(rc)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		return data, nil
	}
	buf := make([]byte, size+1) // +1: to see the end
	n, err := io.ReadFull(rc, buf)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return buf[:n], nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	// Longer than listed (rewritten since?): read the rest.
	rest, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return append(buf, rest...), nil
}

// LastCheckpoint is the content of _delta_log/_last_checkpoint.
type LastCheckpoint struct {
	Version       int64  `json:"version"`
	Size          int64  `json:"size"`
	Parts         *int   `json:"parts,omitempty"`
	SizeInBytes   int64  `json:"sizeInBytes,omitempty"`
	NumOfAddFiles *int64 `json:"numOfAddFiles,omitempty"`
}

// ReadLastCheckpoint reads the _last_checkpoint hint. A missing file is
// storage.ErrNotExist (wrapped); a corrupt one is ErrCorrupt (wrapped).
func ReadLastCheckpoint(ctx context.Context, r Reader) (LastCheckpoint, error) {
	data, err := readAll(ctx, r, lastCheckpointKey)
	if err != nil {
		return LastCheckpoint{}, err
	}
	var lc LastCheckpoint
	if err := json.Unmarshal(data, &lc); err != nil || lc.Version < 0 {
		return LastCheckpoint{}, &CorruptError{Key: lastCheckpointKey, Err: fmt.Errorf("invalid JSON: %v", err)}
	}
	return lc, nil
}

// CorruptError reports a log object that could not be parsed.
type CorruptError struct {
	// Key is the object's key.
	Key string
	// Err is the parse error.
	Err error
}

// Error names the entry and the parse error.
func (e *CorruptError) Error() string { return "corrupt log entry " + e.Key + ": " + e.Err.Error() }

// Unwrap returns the parse error.
func (e *CorruptError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
