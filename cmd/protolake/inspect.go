package main

import (
	"context"
	"errors"
	"io"
)

// runInspect is replaced by the inspect subcommand implementation.
func runInspect(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("inspect: not implemented yet")
}
