package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/kitd-dev/kitd/internal/safefile"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override: KITD_MQTT_BROKER sets
// mqtt.broker.
const EnvPrefix = "KITD_"

// maxFileBytes bounds the config file: a kit's is a few KiB.
const maxFileBytes = 1 << 20

// Load reads path over the defaults, then applies environment overrides
// from environ (os.Environ() in production; tests pass their own).
// Relative paths (mqtt.ca_file, cert_file, key_file, password_file,
// buffer.dir, shadow.state_file, and the other sections' files) resolve
// against path's directory. It checks the file's form (YAML, known keys,
// types); Validate checks values, and Check does both.
func Load(path string, environ []string) (*Config, error) {
	cfg, form, err := readFile(path, environ)
	if err != nil {
		return nil, err
	}
	if len(form) > 0 {
		return nil, fmt.Errorf("%s:\n%w", path, errors.Join(form...))
	}
	return cfg, nil
}

// Check loads and validates path, reporting every error at once: value
// errors beside form errors (an unknown key does not hide a zero
// interval), each line naming its field.
func Check(path string, environ []string, reg *sensors.Registry) (*Config, error) {
	return CheckParts(path, environ, reg, AllParts)
}

// CheckParts is Check with only parts validated beyond the whole file's
// form (an unknown key anywhere is still an error).
func CheckParts(path string, environ []string, reg *sensors.Registry, parts Parts) (*Config, error) {
	cfg, form, err := readFile(path, environ)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range split(cfg.ValidateParts(reg, parts)) {
		// A field that did not decode is at its default; its value
		// error would only repeat the form error.
		if !mentions(form, fieldOf(e)) {
			errs = append(errs, e)
		}
	}
	if errs = append(form, errs...); len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, fmt.Errorf("%s:\n%w", path, errors.Join(errs...))
	}
	return cfg, nil
}

func fieldOf(err error) string {
	f, _, _ := strings.Cut(err.Error(), ": ")
	return f
}

func mentions(errs []error, field string) bool {
	for _, e := range errs {
		if fieldOf(e) == field {
			return true
		}
	}
	return false
}

func readFile(path string, environ []string) (*Config, []error, error) {
	// Like the files it names: a FIFO would block `kitd run` and `config
	// check` for ever, /dev/zero would fill memory.
	data, err := safefile.Read(path, safefile.Rules{Max: maxFileBytes})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrFile, err)
	}
	cfg, form, err := parse(path, data, environ)
	if err != nil {
		return nil, nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, nil, fmt.Errorf("%w %s: %w", ErrFile, path, err)
	}
	cfg.resolve(dir)
	return cfg, form, nil
}

// resolve makes the paths the config names absolute against dir, the
// config file's directory, whether they came from the file or the
// environment: a kit's files sit beside its config, and what a relative
// path means must not depend on where kitd was started (systemd starts
// it in /; `buffer: { dir: buffer }` run from a source tree would
// otherwise write into the buffer package). Driver options are not
// paths here: their drivers require absolute ones.
func (c *Config) resolve(dir string) {
	for _, p := range []*string{&c.MQTT.CAFile, &c.MQTT.CertFile, &c.MQTT.KeyFile, &c.MQTT.PasswordFile, &c.Buffer.Dir, &c.Shadow.StateFile,
		&c.Provisioning.ClaimCertFile, &c.Provisioning.ClaimKeyFile, &c.Provisioning.Dir,
		&c.HTTPS.CAFile, &c.HTTPS.CertFile, &c.HTTPS.KeyFile, &c.HTTPS.APIKeyFile, &c.Jobs.StateFile,
		&c.Update.PublicKeyFile, &c.Update.CAFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// Parse is Load for bytes already read; name is used in errors. Bytes
// have no directory: relative paths are left for the caller to replace.
func Parse(name string, data []byte, environ []string) (*Config, error) {
	cfg, form, err := parse(name, data, environ)
	if err != nil {
		return nil, err
	}
	if len(form) > 0 {
		return nil, fmt.Errorf("%s:\n%w", name, errors.Join(form...))
	}
	return cfg, nil
}

// parse returns the config with every field that decoded, the form errors
// (unknown keys, wrong types), or an error when the file is not a config
// at all.
func parse(name string, data []byte, environ []string) (*Config, []error, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, fmt.Errorf("%w %s: empty", ErrFile, name)
	}
	// yaml first: viper's messages for a broken file do not name the line.
	var probe any
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return nil, nil, fmt.Errorf("%w %s: not valid YAML: %w", ErrFile, name, err)
	}
	doc, ok := probe.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("%w %s: want a YAML mapping of sections (device, mqtt, buffer, ...), got %T", ErrFile, name, probe)
	}
	// Viper loses keys whose value is empty or null, so typos like
	// "sensor:" would pass; check the raw document against the structs.
	form := unknownKeys(probe, reflect.TypeOf(Config{}), "")

	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, nil, fmt.Errorf("%w %s: %w", ErrFile, name, err)
	}
	cfg := Default()
	env := envMap(environ)
	for _, key := range leafKeys(reflect.TypeOf(cfg), "") {
		if val, ok := env[EnvName(key)]; ok {
			v.Set(key, val)
		}
	}
	// Unknown keys are already reported, with better paths than viper's.
	if err := v.Unmarshal(&cfg, viper.DecodeHook(decodeHook)); err != nil {
		form = append(form, decodeErrors(err, sensorNames(doc), env)...)
	}
	keepParameterCase(doc, &cfg)
	return &cfg, form, nil
}

// sensorNames maps "sensors[2]" to "sensors[2] (soil-1)", as every other
// error names a sensor.
func sensorNames(doc map[string]any) map[string]string {
	out := map[string]string{}
	list, _ := doc["sensors"].([]any)
	for i, e := range list {
		if m, ok := e.(map[string]any); ok {
			if n, ok := m["name"].(string); ok && n != "" {
				out[fmt.Sprintf("sensors[%d]", i)] = fmt.Sprintf("sensors[%d] (%s)", i, n)
			}
		}
	}
	return out
}

// EnvName is the environment variable that overrides key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string)
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			m[k] = val
		}
	}
	return m
}

// leafKeys lists the dotted keys of every scalar field, which is what the
// environment can override (not lists: sensors are configured in the file).
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct && !isScalar(ft):
			keys = append(keys, leafKeys(ft, key+".")...)
		case ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map:
		default:
			keys = append(keys, key)
		}
	}
	return keys
}

var textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

func isScalar(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(textUnmarshaler) || t == reflect.TypeOf(time.Time{})
}

// decodeHook is strict where mapstructure's weak typing would be silently
// wrong: "interval: 10" is not ten nanoseconds.
func decodeHook(from, to reflect.Type, data any) (any, error) {
	if to == reflect.TypeOf(time.Duration(0)) {
		s, ok := data.(string)
		if !ok {
			return nil, fmt.Errorf("%v is not a duration: give a unit, e.g. 30s, 5m, 1h", data)
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration: give a number and a unit, e.g. 30s, 5m, 1h", s)
		}
		return d, nil
	}
	if reflect.PointerTo(to).Implements(textUnmarshaler) {
		var text string
		switch d := data.(type) {
		case string:
			text = d
		case int, int64, uint64, float64:
			text = fmt.Sprint(d)
		default:
			return data, nil
		}
		out := reflect.New(to)
		if err := out.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(text)); err != nil {
			return nil, err
		}
		return out.Elem().Interface(), nil
	}
	return data, nil
}

// unknownKeys reports every key in doc that t has no field for. Maps of
// free-form values (driver options) are not checked here: each driver
// rejects its own unknown options.
func unknownKeys(doc any, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var errs []error
	switch t.Kind() {
	case reflect.Struct:
		m, ok := doc.(map[string]any)
		if !ok || isScalar(t) {
			return nil // a type error, which decoding reports
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			if tag := t.Field(i).Tag.Get("mapstructure"); tag != "" && tag != "-" {
				fields[tag] = t.Field(i).Type
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[strings.ToLower(k)]
			if !ok {
				errs = append(errs, fmt.Errorf("%s%s: unknown key", path, k))
				continue
			}
			errs = append(errs, unknownKeys(m[k], ft, path+k+".")...)
		}
	case reflect.Slice:
		l, ok := doc.([]any)
		if !ok {
			return nil
		}
		for i, e := range l {
			at := fmt.Sprintf("%s[%d]", strings.TrimSuffix(path, "."), i)
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok && n != "" {
					at += " (" + n + ")"
				}
			}
			errs = append(errs, unknownKeys(e, t.Elem(), at+".")...)
		}
	case reflect.Map:
		m, ok := doc.(map[string]any)
		if !ok || t.Elem().Kind() == reflect.Interface {
			return nil
		}
		for k, v := range m {
			errs = append(errs, unknownKeys(v, t.Elem(), path+k+".")...)
		}
	}
	return errs
}

var quotedName = regexp.MustCompile(`^'([^']*)' (.*)$`)

// decodeErrors turns mapstructure's errors into one line per field, each
// starting with its path ("mqtt.keepalive: ..."); a value that came from
// the environment says so.
func decodeErrors(err error, names map[string]string, env map[string]string) []error {
	var out []error
	for _, e := range split(unwrapHeader(err)) {
		out = append(out, decodeLine(e, names, env)...)
	}
	return out
}

func unwrapHeader(err error) error {
	if u := errors.Unwrap(err); u != nil {
		if _, ok := u.(interface{ Unwrap() []error }); ok {
			return u
		}
	}
	return err
}

// plainer replaces strconv's wording, which means nothing to a user.
var plainer = []struct{ has, say string }{
	{"as 'int'", "want a whole number"},
	{"as 'uint'", "want a whole number"},
	{"as 'float'", "want a number"},
	{"as 'bool'", "want true or false"},
}

func decodeLine(e error, names map[string]string, env map[string]string) []error {
	var de *mapstructure.DecodeError
	name, msg := "", e.Error()
	if errors.As(e, &de) {
		name, msg = de.Name(), de.Unwrap().Error()
	} else if m := quotedName.FindStringSubmatch(msg); m != nil {
		name, msg = m[1], m[2]
	}
	name = strings.ToLower(name)
	if msg == "" || name == "" {
		return []error{errors.New(msg)}
	}
	for _, p := range plainer {
		if strings.Contains(msg, p.has) {
			msg = p.say
			break
		}
	}
	if v, ok := env[EnvName(name)]; ok {
		msg = fmt.Sprintf("%s (from %s=%q)", msg, EnvName(name), v)
	}
	if i := strings.Index(name, "]"); strings.HasPrefix(name, "sensors[") && i > 0 {
		if n, ok := names[name[:i+1]]; ok {
			name = n + name[i+1:]
		}
	}
	return []error{fmt.Errorf("%s: %s", name, msg)}
}
