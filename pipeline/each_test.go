package pipeline_test

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

func TestEachEvent(t *testing.T) {
	evs := events("e", 5, oneKey)
	out, err := pipeline.EachEvent(evs, func(*pipeline.Event) error { return nil })
	if err != nil || len(out) != 5 || &out[0] != &evs[0] {
		t.Fatalf("all ok: got %d events, %v; want the input slice itself", len(out), err)
	}
	out, err = pipeline.EachEvent(evs, func(ev *pipeline.Event) error {
		switch ev.ID {
		case "e-1":
			return pipeline.Permanent(errors.New("bad"))
		case "e-3":
			return errors.New("later")
		}
		return nil
	})
	var be *pipeline.BatchError
	if !errors.As(err, &be) || be.Len() != 2 || be.Failures[0].Index != 1 || be.Failures[1].Index != 3 {
		t.Fatalf("err = %v", err)
	}
	if !pipeline.IsPermanent(be.Failures[0].Err) || pipeline.IsPermanent(be.Failures[1].Err) {
		t.Fatal("EachEvent must keep each error's class as fn gave it")
	}
	if len(out) != 3 || out[0].ID != "e-0" || out[1].ID != "e-2" || out[2].ID != "e-4" {
		t.Fatalf("survivors %v", out)
	}
}
