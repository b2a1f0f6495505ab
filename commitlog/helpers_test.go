package commitlog

import (
	"github.com/protolake/protolake/storage"
	"io"
	"strings"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

type storageObject = storage.Object
