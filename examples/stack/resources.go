package stack

import (
	"reflect"

	"github.com/latchhq/latch/config"
)

// ConfigureResources registers uris as RFC 8707 resource servers (SPEC §6,
// config `resources`) when this build of Latch has them, and reports
// whether it could. The examples ask for their API both as `resource` and
// through fosite's `audience` parameter, so they work with a Latch that
// predates resource indicators and with one that requires them registered;
// reflection keeps this one file the only place that has to know which.
// TODO(merge): once config.Resources is on main, set it directly.
func ConfigureResources(cfg *config.Config, uris ...string) bool {
	f := reflect.ValueOf(cfg).Elem().FieldByName("Resources")
	if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Struct {
		return false
	}
	for _, u := range uris {
		r := reflect.New(f.Type().Elem()).Elem()
		uri, name := r.FieldByName("URI"), r.FieldByName("Name")
		if !uri.IsValid() || uri.Kind() != reflect.String {
			return false
		}
		uri.SetString(u)
		if name.IsValid() && name.Kind() == reflect.String {
			name.SetString(u)
		}
		f.Set(reflect.Append(f, r))
	}
	return true
}
