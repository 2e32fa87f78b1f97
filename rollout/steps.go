package rollout

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"dagger/kafka-bootc/health"
	"dagger/kafka-bootc/nodes"
)

// order lists the nodes as KafkaRoller rolls them: controllers before
// brokers, one at a time, and the active controller (the quorum's leader)
// last of the controllers, so that the quorum elects a new leader once,
// not at every restart (KafkaRoller's class comment: "any new controller
// is still the last pod to be rolled, thus avoid unnecessary controller
// elections").
func order(rep health.Report) []health.Row {
	var controllers, brokers []health.Row
	for _, r := range rep.Rows {
		if r.Role == nodes.Controller {
			controllers = append(controllers, r)
		} else {
			brokers = append(brokers, r)
		}
	}
	slices.SortStableFunc(controllers, func(a, b health.Row) int {
		return boolInt(a.ID == rep.Leader) - boolInt(b.ID == rep.Leader)
	})
	return append(controllers, brokers...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// change is what a rolling operation does to one node: do, and when do
// fails, undo, which puts the node back as it was.
type change struct {
	node health.Node
	// cols are the report's columns for the node, before its result.
	cols []string
	// skip says why the node needs nothing, or is empty.
	skip string
	do   func(context.Context) error
	// undo, when set, runs after do failed, and says what it did, or what
	// failed.
	undo func(context.Context) (string, error)
}

// column is a column of a rolling operation's report: its heading, and
// the width its values are padded to.
type column struct {
	head  string
	width int
}

// report is the table a rolling operation returns: a row per node, its
// columns and its result.
type report struct {
	cols []column
	b    strings.Builder
}

func newReport(cols ...column) *report {
	r := &report{cols: cols}
	var head []string
	for _, c := range cols {
		head = append(head, c.head)
	}
	r.line(head, "RESULT")
	return r
}

func (r *report) line(values []string, result string) {
	for i, c := range r.cols {
		fmt.Fprintf(&r.b, "%-*s ", c.width, values[i])
	}
	r.b.WriteString(result + "\n")
}

func (r *report) String() string { return r.b.String() }

// apply makes the changes one node at a time, in their order. It stops at
// the first failure: it undoes that node's change, leaves every node
// after it untouched, and returns the report with the error. A node to
// skip is reported as such: a rerun after a failure resumes where the
// failure stopped it. done is the result of a node changed.
func apply(ctx context.Context, what, done string, rep *report, changes []change, log io.Writer) (string, error) {
	for i, c := range changes {
		if c.skip != "" {
			rep.line(c.cols, c.skip)
			continue
		}
		if err := c.do(ctx); err != nil {
			result := "FAILED: " + health.OneLine(err)
			if c.undo != nil {
				said, uerr := c.undo(ctx)
				if uerr != nil {
					result += "; " + said + " FAILED: " + health.OneLine(uerr)
				} else if said != "" {
					result += "; " + said
				}
			}
			rep.line(c.cols, result)
			for _, rest := range changes[i+1:] {
				rep.line(rest.cols, "untouched")
			}
			return "", fmt.Errorf("%s stopped at %s: %w\n%s", what, c.node.Name, err, rep)
		}
		rep.line(c.cols, done)
		fmt.Fprintf(log, "%s: done, the cluster is healthy\n", c.node.Name)
	}
	return rep.String(), nil
}
