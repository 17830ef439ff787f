// Command instachat-kfake runs franz-go's kfake, a Kafka-protocol cluster in one Go
// process, so the production topology can be run and measured on a machine
// where Kafka cannot be installed:
//
//	go run ./cmd/instachat-kfake -port 9092
//	INSTACHAT_KAFKA_BROKERS=127.0.0.1:9092 … instachat
//
// It is not Kafka: no disk, no replication, and it competes for the same
// CPU. docs/BENCHMARKS.md says where its figures stand in for Kafka's.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 9092, "port of the first broker")
	brokers := flag.Int("brokers", 1, "number of brokers, on consecutive ports")
	flag.Parse()
	ports := make([]int, *brokers)
	for i := range ports {
		ports[i] = *port + i
	}
	c, err := kfake.NewCluster(kfake.Ports(ports...))
	if err != nil {
		fmt.Fprintln(os.Stderr, "instachat-kfake:", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Println("kfake listening on", c.ListenAddrs())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}
