package main

import "github.com/urfave/cli/v2"

// fsyncFlag is --fsync: whether a local destination makes what it writes durable before the
// copy ends (the default) or leaves it to the kernel, as crane does.
var fsyncFlag = &cli.BoolFlag{Name: "fsync", Value: true, Usage: "make what a local destination (dir:, oci:, docker-archive:, oci-archive:) writes durable before the copy ends; --fsync=false is faster but a crash or power loss may leave an incomplete image that looks complete: for scratch output"}
