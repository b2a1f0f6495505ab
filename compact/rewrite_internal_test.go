package compact

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/local"
)

// TestNewBuilderSortByMissingStartsNoUpload: a data file without the
// --sort-by column is refused before the new file's upload starts. The
// upload used to start first and, with nothing to write or close its pipe,
// blocked for good (its goroutine and the store's temporary file stayed).
func TestNewBuilderSortByMissingStartsNoUpload(t *testing.T) {
	inner, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := faulty.New(inner)
	put := make(chan string, 1)
	fs.OnBefore(func(ctx context.Context, c faulty.Call) error {
		if c.Op == faulty.OpPut {
			select {
			case put <- c.Key:
			default:
			}
			return errors.New("no upload expected")
		}
		return nil
	})
	rw := &rewriter{store: fs, cfg: Config{SortBy: "campaign_id"}}
	fb, err := rw.newBuilder(context.Background(), parquet.SchemaOf(struct{ A int64 }{}))
	if err == nil || fb != nil {
		t.Fatalf("newBuilder = %v, %v; want the missing --sort-by column's error", fb, err)
	}
	select {
	case key := <-put:
		t.Errorf("an upload of %s started for a file that is never written", key)
	case <-time.After(200 * time.Millisecond):
	}
}
