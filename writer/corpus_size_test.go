package writer

import "testing"

func TestCorpusSize(t *testing.T) {
	msgs, sum := benchCorpus()
	avg := sum / int64(len(msgs))
	t.Logf("corpus: %d messages, %d bytes, avg %d", len(msgs), sum, avg)
	if avg < 350 || avg > 700 {
		t.Errorf("average message size %d, want about 500", avg)
	}
}
