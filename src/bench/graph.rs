//! The benchmark topology of `bench-spec.md`: a seeded random connected graph of mean
//! degree D, bit-identical to the reference peers' (same mulberry32 generator, same
//! draw order), and its statistics (degrees, diameter, eccentricity).

use serde::Serialize;

/// The mulberry32 generator the reference peers seed the whole workload with: graph,
/// filler bytes and publishers are drawn from one stream in that order.
#[derive(Debug, Clone)]
pub struct Mulberry32(u32);

impl Mulberry32 {
    /// A generator seeded like the JavaScript peer's `mulberry32(seed)`.
    pub fn new(seed: u32) -> Mulberry32 {
        Mulberry32(seed)
    }

    /// The next number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x6D2B_79F5);
        let a = self.0;
        let mut t = (a ^ (a >> 15)).wrapping_mul(1 | a);
        t = t.wrapping_add((t ^ (t >> 7)).wrapping_mul(61 | t)) ^ t;
        f64::from(t ^ (t >> 14)) / 4_294_967_296.0
    }

    /// A uniform integer in `0..k` (`floor(next * k)`, as the peers compute it).
    pub fn below(&mut self, k: usize) -> usize {
        (self.next_f64() * k as f64) as usize
    }
}

/// An undirected graph as adjacency lists in insertion order (the dial order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    adj: Vec<Vec<usize>>,
}

/// Edge attempts at most while topping the graph up to its edge count.
const MAX_EXTRA_EDGE_TRIES: usize = 200_000;
/// Redraws of a spanning-tree parent whose degree has already reached D.
const PARENT_RETRIES: usize = 8;

impl Graph {
    /// Builds the spec graph on `n` nodes with mean degree `degree`, drawing from `rng`:
    /// a random spanning tree over a shuffled order that prefers parents below
    /// `degree`, then random extra edges between nodes of degree ≤ `degree` until
    /// there are `round(n·degree/2)` edges.
    pub fn build(rng: &mut Mulberry32, n: usize, degree: usize) -> Graph {
        let mut g = Graph {
            adj: vec![Vec::new(); n],
        };
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = rng.below(i + 1);
            order.swap(i, j);
        }
        for i in 1..n {
            let mut parent = order[rng.below(i)];
            let mut tries = 0;
            while tries < PARENT_RETRIES && g.adj[parent].len() >= degree {
                parent = order[rng.below(i)];
                tries += 1;
            }
            g.add(order[i], parent);
        }
        let complete = n * n.saturating_sub(1) / 2;
        let target = ((n * degree) as f64 / 2.0).round().min(complete as f64) as usize;
        let mut edges = n.saturating_sub(1);
        let mut tries = 0;
        while edges < target && tries < MAX_EXTRA_EDGE_TRIES {
            tries += 1;
            let a = rng.below(n);
            let b = rng.below(n);
            if g.adj[a].len() > degree || g.adj[b].len() > degree {
                continue;
            }
            if g.add(a, b) {
                edges += 1;
            }
        }
        g
    }

    fn add(&mut self, a: usize, b: usize) -> bool {
        if a == b || self.adj[a].contains(&b) {
            return false;
        }
        self.adj[a].push(b);
        self.adj[b].push(a);
        true
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.adj.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.adj.is_empty()
    }

    /// Neighbours of `node`, in the order their edges were added.
    pub fn neighbours(&self, node: usize) -> &[usize] {
        &self.adj[node]
    }

    /// Edges `(a, b)` with `a < b`: `a` dials `b`.
    pub fn dial_edges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.adj
            .iter()
            .enumerate()
            .flat_map(|(a, ns)| ns.iter().filter(move |&&b| a < b).map(move |&b| (a, b)))
    }

    /// Degrees, diameter and mean eccentricity; `None` if the graph is not connected.
    pub fn stats(&self) -> Option<GraphStats> {
        let n = self.adj.len();
        let mut diameter = 0;
        let mut sum_ecc = 0;
        for source in 0..n {
            let mut dist = vec![usize::MAX; n];
            dist[source] = 0;
            let mut queue = vec![source];
            let mut head = 0;
            while let Some(&u) = queue.get(head) {
                head += 1;
                for &v in &self.adj[u] {
                    if dist[v] == usize::MAX {
                        dist[v] = dist[u] + 1;
                        queue.push(v);
                    }
                }
            }
            let ecc = dist.iter().copied().max().unwrap_or(0);
            if ecc == usize::MAX {
                return None;
            }
            diameter = diameter.max(ecc);
            sum_ecc += ecc;
        }
        let degrees = self.adj.iter().map(Vec::len);
        let sum: usize = degrees.clone().sum();
        Some(GraphStats {
            edges: sum / 2,
            degree_min: degrees.clone().min().unwrap_or(0),
            degree_mean: round_to(sum as f64 / n.max(1) as f64, 2),
            degree_max: degrees.max().unwrap_or(0),
            diameter_hops: diameter,
            mean_eccentricity_hops: round_to(sum_ecc as f64 / n.max(1) as f64, 2),
        })
    }
}

/// The graph figures the report carries (field names as the reference peers print them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphStats {
    /// Undirected edges.
    pub edges: usize,
    /// Smallest degree.
    pub degree_min: usize,
    /// Mean degree, two decimals.
    pub degree_mean: f64,
    /// Largest degree.
    pub degree_max: usize,
    /// Longest shortest path, in hops.
    pub diameter_hops: usize,
    /// Mean over nodes of the longest shortest path from them, two decimals.
    pub mean_eccentricity_hops: f64,
}

/// `x` rounded to `digits` decimals.
pub(crate) fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulberry32_matches_the_javascript_generator() {
        // First outputs of `mulberry32(1)` in bench.mjs.
        let mut rng = Mulberry32::new(1);
        let first: Vec<f64> = (0..3).map(|_| rng.next_f64()).collect();
        assert_eq!(
            first,
            [0.6270739405881613, 0.002735721180215478, 0.5274470399599522]
        );
    }

    #[test]
    fn seed_1_graphs_match_the_reference_peers() {
        // RESULTS.md of both peers: n50 → 100 edges, degree 1/4/5, diameter 6,
        // mean eccentricity 4.92; n20 → 40 edges, diameter 5.
        let g = Graph::build(&mut Mulberry32::new(1), 50, 4);
        let s = g.stats().unwrap();
        assert_eq!(
            (s.edges, s.degree_min, s.degree_mean, s.degree_max),
            (100, 1, 4.0, 5)
        );
        assert_eq!((s.diameter_hops, s.mean_eccentricity_hops), (6, 4.92));
        assert_eq!(g.dial_edges().count(), 100);
        let s20 = Graph::build(&mut Mulberry32::new(1), 20, 4)
            .stats()
            .unwrap();
        assert_eq!((s20.edges, s20.diameter_hops), (40, 5));
    }

    #[test]
    fn two_nodes_make_one_edge_and_a_disconnected_graph_has_no_stats() {
        let g = Graph::build(&mut Mulberry32::new(7), 2, 1);
        assert_eq!(g.dial_edges().collect::<Vec<_>>(), [(0, 1)]);
        let apart = Graph {
            adj: vec![vec![], vec![]],
        };
        assert_eq!(apart.stats(), None);
    }
}
