package main

import "github.com/urfave/cli/v2"

// readTimeoutFlag sets types.SystemContext.ReadTimeout: a registry transfer that receives (or,
// uploading, sends) nothing for that long is stalled, and is retried like a broken connection.
var readTimeoutFlag = &cli.DurationFlag{
	Name:        "read-timeout",
	Usage:       "give up on a registry transfer that sends or receives nothing for `DURATION`, and retry it (0: the default, negative: never)",
	DefaultText: "30s",
}
