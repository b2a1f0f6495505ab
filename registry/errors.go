package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/sr"
)

// ErrNotFound is returned (wrapped) when the registry answered that it has
// no such schema id, subject or version.
var ErrNotFound = errors.New("not found in the schema registry")

// ErrUnavailable is returned (wrapped) when the registry could not be asked
// or did not answer: connection errors, timeouts, 5xx, 429, a rejected
// credential. The request may succeed later; nothing about the record is
// known.
var ErrUnavailable = errors.New("schema registry unavailable")

// SchemaError reports a schema the registry holds that protolake cannot
// use: not protobuf, not compilable, a reference that cannot be resolved,
// or a message-index path naming no message.
type SchemaError struct {
	// ID is the schema id (0 when the schema was looked up by subject).
	ID int
	// Subject and Version name a referenced schema at fault, if any.
	Subject string
	Version int
	// Err is the cause.
	Err error
}

func (e *SchemaError) Error() string {
	where := fmt.Sprintf("schema id %d", e.ID)
	if e.Subject != "" {
		where += fmt.Sprintf(" (reference %s version %d)", e.Subject, e.Version)
	}
	return where + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *SchemaError) Unwrap() error { return e.Err }

// classify maps an error of the sr client onto ErrNotFound / ErrUnavailable;
// what names the request.
func classify(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var re *sr.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s: %w (%s)", what, ErrNotFound, re.Message)
		case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s: %w: HTTP %d %s (check the credentials: username/password_env or bearer_token_env)", what, ErrUnavailable, re.StatusCode, re.Message)
		default:
			return fmt.Errorf("%s: %w: HTTP %d %s", what, ErrUnavailable, re.StatusCode, re.Message)
		}
	}
	return fmt.Errorf("%s: %w: %v", what, ErrUnavailable, err)
}
