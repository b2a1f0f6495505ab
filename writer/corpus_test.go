package writer

import (
	"sync"
	"time"

	"github.com/protolake/protolake/internal/adtrack"
)

// corpusSize is the number of messages in the benchmark corpus.
const corpusSize = 100_000

var (
	corpusOnce sync.Once
	corpusMsgs [][]byte
	corpusSum  int64
)

// benchCorpus returns the deterministic AdImpression corpus (wire bytes) and
// its total size. Generated once per test binary from a fixed seed.
func benchCorpus() ([][]byte, int64) {
	corpusOnce.Do(func() {
		corpusMsgs, corpusSum = adtrack.Corpus(20261123, 4, corpusSize, 8*time.Second)
	})
	return corpusMsgs, corpusSum
}
