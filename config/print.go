package config

import (
	"encoding"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Write prints the effective config as YAML, in the file's key order, with
// durations and sizes in their readable form. The config holds only the
// paths of certificates and keys, never their contents, so nothing here
// can leak key material.
func (c *Config) Write(w io.Writer) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(node(reflect.ValueOf(*c))); err != nil {
		return err
	}
	return enc.Close()
}

var durationType = reflect.TypeOf(time.Duration(0))

func node(v reflect.Value) *yaml.Node {
	if v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return scalar("null", "!!null")
		}
		v = v.Elem()
	}
	if v.Type() == durationType {
		return scalar(time.Duration(v.Int()).String(), "!!str")
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok && v.Kind() != reflect.Struct {
		b, err := m.MarshalText()
		if err == nil {
			return scalar(string(b), "!!str")
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i < v.NumField(); i++ {
			tag := v.Type().Field(i).Tag.Get("mapstructure")
			if tag == "" || tag == "-" {
				continue
			}
			n.Content = append(n.Content, scalar(tag, "!!str"), node(v.Field(i)))
		}
		return n
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			n.Content = append(n.Content, scalar(fmt.Sprint(k), "!!str"), node(v.MapIndex(k)))
		}
		return n
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if v.Len() == 0 {
			n.Style = yaml.FlowStyle
		}
		for i := 0; i < v.Len(); i++ {
			n.Content = append(n.Content, node(v.Index(i)))
		}
		return n
	case reflect.String:
		return scalar(v.String(), "!!str")
	case reflect.Bool:
		return scalar(fmt.Sprint(v.Bool()), "!!bool")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar(fmt.Sprint(v.Int()), "!!int")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar(fmt.Sprint(v.Uint()), "!!int")
	case reflect.Float32, reflect.Float64:
		// "0.5" and "2.0", never a bare "2" that would read back as an int.
		f := strconv.FormatFloat(v.Float(), 'g', -1, 64)
		if !strings.ContainsAny(f, ".eEIN") {
			f += ".0"
		}
		return scalar(f, "!!float")
	}
	return scalar(fmt.Sprint(v.Interface()), "!!str")
}

func scalar(value, tag string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: value, Tag: tag}
}
