package mem_test

import (
	"testing"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/storage/storagetest"
)

func TestAcceptance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return mem.New() })
}
