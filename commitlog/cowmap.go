package commitlog

// cowMap is a string-keyed map split into a fixed number of shards that
// snapshots share copy-on-write: clone copies only the shard table, and a
// write to a clone copies the one shard it touches. Advancing a snapshot of
// N files by k actions therefore costs O(cowShards + k·N/cowShards) instead
// of O(N), and the snapshot it was advanced from is never changed.
//
// A cowMap is not safe for concurrent writes; snapshots are written only
// while they are built, and read-only once published.
type cowMap[V any] struct {
	shards []map[string]V // nil entries are empty shards
	owned  []bool         // shards this map may change in place; nil: none
	n      int
}

// cowShards is the number of shards: a clone costs copying this many
// pointers, a write to a shared shard copying len/cowShards entries.
const cowShards = 1024

func newCowMap[V any]() cowMap[V] {
	return cowMap[V]{shards: make([]map[string]V, cowShards), owned: make([]bool, cowShards)}
}

// shardOf is FNV-1a of the key, folded onto the shards.
func shardOf(key string) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % cowShards)
}

func (m *cowMap[V]) get(key string) (V, bool) {
	v, ok := m.shards[shardOf(key)][key]
	return v, ok
}

func (m *cowMap[V]) len() int { return m.n }

// writable returns shard i, copying it first when it is shared.
func (m *cowMap[V]) writable(i int) map[string]V {
	if m.owned == nil {
		m.owned = make([]bool, cowShards)
	}
	if !m.owned[i] {
		old := m.shards[i]
		n := make(map[string]V, len(old)+1)
		for k, v := range old {
			n[k] = v
		}
		m.shards[i], m.owned[i] = n, true
	}
	return m.shards[i]
}

func (m *cowMap[V]) set(key string, v V) {
	i := shardOf(key)
	if _, ok := m.shards[i][key]; !ok {
		m.n++
	}
	m.writable(i)[key] = v
}

func (m *cowMap[V]) delete(key string) {
	i := shardOf(key)
	if _, ok := m.shards[i][key]; !ok {
		return
	}
	delete(m.writable(i), key)
	m.n--
}

// freeze makes m's shards shared: from now on a write to m or to any
// clone copies the shard it touches first. A snapshot freezes its maps
// before it is published, so concurrent readers of a published snapshot
// never see a write.
func (m *cowMap[V]) freeze() {
	if m.owned != nil { // published maps are frozen already: no write, no race
		m.owned = nil
	}
}

// clone returns a map sharing every shard with m (freezing m first).
func (m *cowMap[V]) clone() cowMap[V] {
	m.freeze()
	c := cowMap[V]{shards: make([]map[string]V, cowShards), n: m.n}
	copy(c.shards, m.shards)
	return c
}

// each calls f for every entry, in no particular order.
func (m *cowMap[V]) each(f func(key string, v V)) {
	for _, s := range m.shards {
		for k, v := range s {
			f(k, v)
		}
	}
}

// values returns every value, in no particular order.
func (m *cowMap[V]) values() []V {
	out := make([]V, 0, m.n)
	for _, s := range m.shards {
		for _, v := range s {
			out = append(out, v)
		}
	}
	return out
}
