// Command registry serves franz-go's srfake — an in-memory implementation of
// the Confluent Schema Registry REST API — for the interop tier's tests,
// which register schemas through a real serializer (Confluent's Python
// client). It listens on -listen (default 127.0.0.1:0), prints
// "listening on http://ADDR" on stdout and serves until killed.
//
// It stands in for a real registry server, which could not be installed
// here from the package registries (see docs/operations.md).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: srfake.NewRegistry().Handler(), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}
