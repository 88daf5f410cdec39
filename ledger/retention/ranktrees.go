package retention

import (
	"math"
	"slices"
	"sort"
)

// Gradient-boosted trees for the ranking model: Newton boosting of the
// logistic loss (each tree fits the gradient and Hessian of the loss at
// the current scores), level by level to a fixed depth, splits searched
// over histograms of pre-binned features (at most rankTreeBins bins per
// feature, cut at quantiles of a sample of the rows), leaves shrunk by
// the spec's shrinkage. No row or feature sampling: the same rows give
// the same trees.

// RankTree is one tree of the ranking model: Nodes[0] is the root; a node
// with Left == 0 is a leaf with Value, otherwise rows with feature
// Feature <= Threshold go to Left, the others to Right.
type RankTree struct {
	Nodes []RankNode `json:"nodes"`
}

// RankNode is one node of a RankTree.
type RankNode struct {
	Feature   int     `json:"feature,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	Left      int32   `json:"left,omitempty"`
	Right     int32   `json:"right,omitempty"`
	Value     float64 `json:"value,omitempty"`
}

func (t *RankTree) predict(row []float64) float64 {
	i := 0
	for {
		n := &t.Nodes[i]
		if n.Left == 0 {
			return n.Value
		}
		if row[n.Feature] <= n.Threshold {
			i = int(n.Left)
		} else {
			i = int(n.Right)
		}
	}
}

const (
	rankTreeBins       = 32      // bins per feature, at most
	rankTreeLambda     = 1.0     // L2 penalty on leaf values
	rankTreeMinHessian = 2.0     // least Hessian (about 8 rows at p=0.5) on each side of a split
	rankTreeBinSample  = 1 << 12 // rows sampled for the bin cuts
)

// rankCuts are the bin cuts of each feature, from quantiles of at most
// rankTreeBinSample rows (every n/sample-th): bin b of a feature holds
// values in (cuts[b-1], cuts[b]]; the last bin the values above all cuts.
func rankCuts(X []float64, k, n int) [][]float64 {
	step := max(1, n/rankTreeBinSample)
	vals := make([]float64, 0, n/step+1)
	cuts := make([][]float64, k-1)
	for f := range cuts {
		vals = vals[:0]
		for i := 0; i < n; i += step {
			vals = append(vals, X[i*k+1+f])
		}
		slices.Sort(vals)
		var c []float64
		for q := 1; q < rankTreeBins; q++ {
			v := vals[q*len(vals)/rankTreeBins]
			if (len(c) == 0 || v > c[len(c)-1]) && v < vals[len(vals)-1] {
				c = append(c, v)
			}
		}
		cuts[f] = c
	}
	return cuts
}

// fitTrees boosts rounds trees of the given depth on X (len(y) rows of k
// values, the first of each 1 and unused) for targets y in {0, 1}. It
// returns the starting log-odds, the trees and each feature's share of
// the total split gain.
func fitTrees(X []float64, k int, y []float64, depth, rounds int, shrink float64) (float64, []RankTree, []float64) {
	n, F := len(y), k-1
	cuts := rankCuts(X, k, n)
	bins := make([]uint8, n*F)
	for i := range n {
		for f := range F {
			bins[i*F+f] = uint8(sort.SearchFloat64s(cuts[f], X[i*k+1+f]))
		}
	}
	var pos float64
	for _, v := range y {
		pos += v
	}
	base := math.Log(pos / (float64(n) - pos))
	score := make([]float64, n)
	for i := range score {
		score[i] = base
	}
	g, h := make([]float64, n), make([]float64, n)
	node := make([]int32, n) // the row's node in the tree being built; -1 once in a leaf
	gain := make([]float64, F)
	trees := make([]RankTree, 0, rounds)
	hist := make([]float64, (1<<(depth-1))*F*rankTreeBins*2)
	type open struct {
		id   int32 // index in the tree's nodes
		G, H float64
	}
	var level, next []open
	var route []int32 // per open node of the level: the first child's position in next, or -1 for a leaf
	for range rounds {
		var G, H float64
		for i := range n {
			p := 1 / (1 + math.Exp(-score[i]))
			g[i], h[i] = p-y[i], p*(1-p)
			G += g[i]
			H += h[i]
			node[i] = 0
		}
		t := RankTree{Nodes: []RankNode{{}}}
		level = append(level[:0], open{0, G, H})
		for d := 0; d <= depth; d++ {
			route = route[:0]
			next = next[:0]
			if d < depth {
				hs := hist[:len(level)*F*rankTreeBins*2]
				clear(hs)
				for i := range n {
					j := node[i]
					if j < 0 {
						continue
					}
					gi, hi := g[i], h[i]
					hb := hs[int(j)*F*rankTreeBins*2:]
					for f, b := range bins[i*F : i*F+F] {
						o := (f*rankTreeBins + int(b)) * 2
						hb[o] += gi
						hb[o+1] += hi
					}
				}
			}
			for j, o := range level {
				bestGain, bestF, bestB := 0.0, -1, 0
				var bestL open
				if d < depth {
					parent := o.G * o.G / (o.H + rankTreeLambda)
					for f := range F {
						hb := hist[(j*F+f)*rankTreeBins*2:]
						var gl, hl float64
						for b := range len(cuts[f]) {
							gl += hb[2*b]
							hl += hb[2*b+1]
							gr, hr := o.G-gl, o.H-hl
							if hl < rankTreeMinHessian || hr < rankTreeMinHessian {
								continue
							}
							v := gl*gl/(hl+rankTreeLambda) + gr*gr/(hr+rankTreeLambda) - parent
							if v > bestGain+1e-12 {
								bestGain, bestF, bestB, bestL = v, f, b, open{G: gl, H: hl}
							}
						}
					}
				}
				if bestF < 0 {
					t.Nodes[o.id].Value = -o.G / (o.H + rankTreeLambda) * shrink
					route = append(route, -1)
					continue
				}
				gain[bestF] += bestGain
				l := int32(len(t.Nodes))
				t.Nodes[o.id] = RankNode{Feature: bestF, Threshold: cuts[bestF][bestB], Left: l, Right: l + 1}
				t.Nodes = append(t.Nodes, RankNode{}, RankNode{})
				route = append(route, int32(len(next))<<8|int32(bestB))
				next = append(next, open{l, bestL.G, bestL.H}, open{l + 1, o.G - bestL.G, o.H - bestL.H})
			}
			for i := range n {
				j := node[i]
				if j < 0 {
					continue
				}
				r := route[j]
				if r < 0 {
					score[i] += t.Nodes[level[j].id].Value
					node[i] = -1
					continue
				}
				nd := &t.Nodes[level[j].id]
				c := r >> 8
				if int(bins[i*F+nd.Feature]) > int(r&0xff) {
					c++
				}
				node[i] = c
			}
			level, next = next, level
			if len(level) == 0 {
				break
			}
		}
		trees = append(trees, t)
	}
	var total float64
	for _, v := range gain {
		total += v
	}
	if total > 0 {
		for f := range gain {
			gain[f] /= total
		}
	}
	return base, trees, gain
}
