package main

import (
	"context"
	"errors"
	"io"
)

// runSchema is replaced by the schema subcommand implementation.
func runSchema(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("schema: not implemented yet")
}
