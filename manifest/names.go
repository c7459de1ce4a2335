package manifest

import "strconv"

// layerName names layer i in errors.
func layerName(i int) string { return "layer " + strconv.Itoa(i) }

// instanceName names index entry i in errors.
func instanceName(i int) string { return "manifests[" + strconv.Itoa(i) + "]" }
