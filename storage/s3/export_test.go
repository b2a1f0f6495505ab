package s3

// SetListPageSize makes List fetch n keys per page, so tests can exercise
// pagination without writing thousands of objects.
func SetListPageSize(s *Store, n int32) { s.listPageSize = n }

// BucketOf returns the store's bucket.
func BucketOf(s *Store) string { return s.bucket }
