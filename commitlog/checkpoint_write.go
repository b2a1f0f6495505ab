package commitlog

import "context"

func (t *Table) checkpointAndClean(ctx context.Context, v int64) error { return nil }
