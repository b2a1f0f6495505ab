// Package s3 is a storage.Store on Amazon S3 or an S3-compatible object store
// such as MinIO, for s3://bucket/prefix URLs. It uses aws-sdk-go-v2.
//
// Guarantees, on top of the storage package documentation:
//
//   - PutIfAbsent is one PutObject request with "If-None-Match: *". The
//     store decides atomically: exactly one of many concurrent writers gets
//     200, every other gets 412 Precondition Failed, reported as
//     storage.ErrExist. The request is sent once, never retried by the SDK: a
//     retry after a lost response would meet our own object and turn a win
//     into a 412. A 409 ConditionalRequestConflict, 408, 429, any 5xx, a
//     transport error, a timeout or a cancellation while the request is in
//     flight leave the outcome unknown and are reported as
//     storage.ErrAmbiguous (wrapping the cause). A context that is already
//     cancelled before the request is sent is a plain, unambiguous error.
//   - PutIfAbsent reads the whole content into memory first (one PutObject,
//     at most 5 GiB): log entries are small, and a conditional multipart
//     completion is not supported by every S3-compatible store. Checkpoints,
//     which can be large, are written with Put (the commit log needs no
//     exclusivity for them).
//   - Put streams: content up to Config.PartSize goes in one PutObject; larger
//     content is sent as a multipart upload of PartSize parts, read and sent
//     one part at a time (memory use is one part). S3 makes the object visible
//     only when the upload completes, so readers never see a partial object.
//     On any failure the upload is aborted. An abort that itself fails leaves
//     invisible parts behind; a bucket lifecycle rule
//     (AbortIncompleteMultipartUpload) cleans those up.
//   - ListPage (storage.PageLister) is ListObjectsV2 with StartAfter,
//     Delimiter "/" and MaxKeys: it fetches only the pages it returns.
//   - List uses ListObjectsV2 and follows every page. S3 returns keys in
//     UTF-8 byte order, which is Go string order; the result is sorted again
//     anyway so a store that deviates cannot break the contract.
//   - Get of an absent key (NoSuchKey / 404) is storage.ErrNotExist; a
//     missing bucket is a plain error that names it.
//
// Credentials come from Config.AccessKeyID/SecretAccessKey when set, else
// from the SDK's standard chain (AWS_ACCESS_KEY_ID..., AWS_PROFILE and the
// shared config files, web identity, ECS/EC2 roles). The region comes from
// Config.Region, else the chain (AWS_REGION, profile), else us-east-1. For
// MinIO and other S3-compatible stores set Config.Endpoint and
// Config.UsePathStyle. Request checksums are sent only where an operation
// requires them, because several S3-compatible stores reject the SDK's newer
// default trailing checksums; payload integrity is still covered by the
// SigV4 signature over the body's SHA-256.
package s3
