package s3

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/internal/ctxio"
	"github.com/protolake/protolake/storage/internal/keys"
)

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.PageLister = (*Store)(nil)
)

// abortTimeout bounds the cleanup of a failed multipart upload, which runs
// even when the caller's context is already cancelled.
const abortTimeout = 30 * time.Second

// Store is a storage.Store on one bucket and key prefix. It is safe for
// concurrent use.
type Store struct {
	client       *awss3.Client
	bucket       string
	prefix       string // "" or ends with "/"
	partSize     int64
	listPageSize int32 // 0: the service's default (1000); tests lower it
}

// New builds a Store from cfg. It does not contact the service (a wrong
// bucket shows up on the first call), but without static credentials it
// resolves the standard credential chain once, so that missing credentials
// fail now with a *CredentialsError naming every source tried; the EC2
// instance-metadata step gives up after a second off-cloud.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{imdsOption()}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 store s3://%s/%s: load aws config: %w", cfg.Bucket, cfg.Prefix, err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	if cfg.AccessKeyID == "" {
		if err := checkCredentials(ctx, awsCfg, cfg.Profile); err != nil {
			return nil, fmt.Errorf("s3 store s3://%s/%s: %w", cfg.Bucket, cfg.Prefix, err)
		}
	}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		o.UsePathStyle = cfg.UsePathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return NewFromClient(client, cfg), nil
}

// NewFromClient builds a Store on an existing client (with its own
// credentials, endpoint and HTTP client). Only Bucket, Prefix and PartSize of
// cfg are used; the caller is responsible for their validity (see
// Config.Validate).
func NewFromClient(client *awss3.Client, cfg Config) *Store {
	prefix := cfg.Prefix
	if prefix != "" {
		prefix += "/"
	}
	return &Store{client: client, bucket: cfg.Bucket, prefix: prefix, partSize: cfg.partSize()}
}

// Client returns the underlying S3 client.
func (s *Store) Client() *awss3.Client { return s.client }

func (s *Store) objectKey(key string) string { return s.prefix + key }

func check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return keys.Check(key)
}

// Get opens the object at key.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := check(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil {
		if isNoSuchKey(err) {
			return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return out.Body, nil
}

// Put writes r to key: one PutObject up to the part size, a multipart upload
// above it.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	if err := s.put(ctx, key, r); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader) error {
	if err := check(ctx, key); err != nil {
		return err
	}
	br := bufio.NewReader(ctxio.Reader(ctx, r))
	var part bytes.Buffer
	if _, err := part.ReadFrom(io.LimitReader(br, s.partSize)); err != nil {
		return err
	}
	if _, err := br.Peek(1); err == io.EOF {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := s.client.PutObject(ctx, &awss3.PutObjectInput{
			Bucket:        aws.String(s.bucket),
			Key:           aws.String(s.objectKey(key)),
			Body:          bytes.NewReader(part.Bytes()),
			ContentLength: aws.Int64(int64(part.Len())),
		})
		return err
	} else if err != nil {
		return err
	}
	return s.multipart(ctx, key, br, &part)
}

// multipart uploads first and then the rest of r in parts, aborting the
// upload on any failure so no parts are left behind.
func (s *Store) multipart(ctx context.Context, key string, r io.Reader, part *bytes.Buffer) (err error) {
	objKey := s.objectKey(key)
	created, err := s.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(objKey),
	})
	if err != nil {
		return fmt.Errorf("create multipart upload: %w", err)
	}
	uploadID := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		_, abortErr := s.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{
			Bucket:   aws.String(s.bucket),
			Key:      aws.String(objKey),
			UploadId: uploadID,
		})
		if abortErr != nil {
			err = errors.Join(err, fmt.Errorf("abort multipart upload %s: %w", aws.ToString(uploadID), abortErr))
		}
	}()
	var completed []types.CompletedPart
	for n := int32(1); part.Len() > 0; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		out, err := s.client.UploadPart(ctx, &awss3.UploadPartInput{
			Bucket:        aws.String(s.bucket),
			Key:           aws.String(objKey),
			UploadId:      uploadID,
			PartNumber:    aws.Int32(n),
			Body:          bytes.NewReader(part.Bytes()),
			ContentLength: aws.Int64(int64(part.Len())),
		})
		if err != nil {
			return fmt.Errorf("upload part %d: %w", n, err)
		}
		completed = append(completed, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
		part.Reset()
		if _, err := part.ReadFrom(io.LimitReader(r, s.partSize)); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(objKey),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	return nil
}

// PutIfAbsent writes r to key with "If-None-Match: *", sent exactly once.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	if err := check(ctx, key); err != nil {
		return fmt.Errorf("put-if-absent %s: %w", key, err)
	}
	data, err := io.ReadAll(io.LimitReader(ctxio.Reader(ctx, r), MaxPartSize+1))
	if err != nil {
		return fmt.Errorf("put-if-absent %s: %w", key, err)
	}
	if len(data) > MaxPartSize {
		return fmt.Errorf("put-if-absent %s: content is larger than %d bytes, the limit of a single conditional PutObject", key, MaxPartSize)
	}
	// Nothing has been sent yet, so a cancellation here is not ambiguous.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put-if-absent %s: %w", key, err)
	}
	_, err = s.client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.objectKey(key)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		IfNoneMatch:   aws.String("*"),
	}, func(o *awss3.Options) {
		// One attempt only: if a first attempt wrote the object but its
		// response was lost, a retry would get 412 and we would report
		// ErrExist for our own commit. (net/http does not replay a PUT
		// either.)
		o.Retryer = aws.NopRetryer{}
	})
	if err != nil {
		return fmt.Errorf("put-if-absent %s: %w", key, classifyConditional(err))
	}
	return nil
}

// classifyConditional maps the error of a conditional PutObject to
// storage.ErrExist, storage.ErrAmbiguous, or a definite failure.
func classifyConditional(err error) error {
	// Failing to connect means nothing was sent.
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return err
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() > 0 {
		switch code := re.HTTPStatusCode(); {
		case code == http.StatusPreconditionFailed:
			return storage.ErrExist
		case code == http.StatusConflict, // ConditionalRequestConflict: a concurrent write is in progress
			code == http.StatusRequestTimeout,
			code == http.StatusTooManyRequests,
			code >= 500:
			return fmt.Errorf("%w: %w", storage.ErrAmbiguous, err)
		default:
			// Any other answer (403, 400, 404 NoSuchBucket, ...) is a
			// definite refusal: nothing was written.
			return err
		}
	}
	// No HTTP response: the request may or may not have reached the store.
	return fmt.Errorf("%w: %w", storage.ErrAmbiguous, err)
}

// List returns the objects under prefix, following every page.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	in := &awss3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	}
	if s.listPageSize > 0 {
		in.MaxKeys = aws.Int32(s.listPageSize)
	}
	var out []storage.Object
	p := awss3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", prefix, err)
		}
		out = s.appendObjects(out, page.Contents)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ListPage lists the prefix's directory from startAfter on with
// ListObjectsV2 (StartAfter, Delimiter "/", MaxKeys limit), requesting more
// pages only while it has fewer than limit objects and the service has more.
func (s *Store) ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list page %q: %w", prefix, err)
	}
	if limit < 1 {
		return nil, fmt.Errorf("list page %q: limit %d, want >= 1", prefix, limit)
	}
	in := &awss3.ListObjectsV2Input{
		Bucket:    aws.String(s.bucket),
		Prefix:    aws.String(s.prefix + prefix),
		Delimiter: aws.String("/"),
		MaxKeys:   aws.Int32(int32(min(limit, 1000))),
	}
	if startAfter != "" {
		in.StartAfter = aws.String(s.prefix + startAfter)
	}
	if s.listPageSize > 0 {
		in.MaxKeys = aws.Int32(min(*in.MaxKeys, s.listPageSize))
	}
	var out []storage.Object
	p := awss3.NewListObjectsV2Paginator(s.client, in)
	for len(out) < limit && p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list page %q: %w", prefix, err)
		}
		out = s.appendObjects(out, page.Contents)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out[:min(len(out), limit)], nil
}

// appendObjects appends the listed objects that are keys this store could
// have written.
func (s *Store) appendObjects(out []storage.Object, contents []types.Object) []storage.Object {
	for _, o := range contents {
		k, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
		if !ok || keys.Check(k) != nil {
			// Not a key this store could have written (for example
			// "a//b" or a "folder/" marker made by a console): skip it
			// rather than return a key that Get would refuse.
			continue
		}
		out = append(out, storage.Object{Key: k, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
	}
	return out
}

// Delete removes the object at key. S3 reports success for absent keys; a
// store that answers 404 NoSuchKey is treated the same.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := check(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	_, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// isNoSuchKey reports whether err says the key (not the bucket) is absent.
func isNoSuchKey(err error) bool {
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	return false
}
