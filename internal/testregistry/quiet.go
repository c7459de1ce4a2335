package testregistry

import (
	"context"
	"io"
	"net/http"
	"reflect"

	"github.com/sirupsen/logrus"
)

// quietLogger discards the registry's logs. The registry takes its logger from the request
// context under a key of an internal type (dcontext.loggerKey), falling back to logrus's
// standard logger, which tests must not reconfigure because library code logs through it.
var quietLogger = func() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.PanicLevel)
	return logrus.NewEntry(l)
}()

const dcontextPkg = "github.com/distribution/distribution/v3/internal/dcontext"

// quietContext answers the registry's logger lookup with quietLogger.
type quietContext struct{ context.Context }

// Value implements context.Context.
func (c quietContext) Value(key any) any {
	if t := reflect.TypeOf(key); t != nil && t.PkgPath() == dcontextPkg && t.Name() == "loggerKey" {
		return quietLogger
	}
	return c.Context.Value(key)
}

// quietHandler puts a quietContext under every request.
type quietHandler struct{ next http.Handler }

func (h quietHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.next.ServeHTTP(w, r.WithContext(quietContext{r.Context()}))
}
