package writer

import (
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

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
		r := rand.New(rand.NewPCG(20261123, 4))
		corpusMsgs = make([][]byte, corpusSize)
		for i := range corpusMsgs {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(adtrack.Impression(r, i, adtrack.CorpusBase, 8*time.Second))
			if err != nil {
				panic(err)
			}
			corpusMsgs[i] = b
			corpusSum += int64(len(b))
		}
	})
	return corpusMsgs, corpusSum
}
