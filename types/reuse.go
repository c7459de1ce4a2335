package types

// AcceptsCompression reports whether a blob compressed with compressorName ("" when unknown)
// may be reused under o: always without RequiredCompression, else only a known, equal one.
func (o ReuseOptions) AcceptsCompression(compressorName string) bool {
	return o.RequiredCompression == "" || (compressorName != "" && compressorName == o.RequiredCompression)
}

// AcceptsOriginal reports whether the requested blob itself may be reused under o.
func (o ReuseOptions) AcceptsOriginal() bool { return o.AcceptsCompression(o.OriginalCompression) }
