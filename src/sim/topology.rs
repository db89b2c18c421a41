//! Who is linked to whom in a drill simulation: a line (a corridor of relays),
//! rooms (tents of up to [`ROOM_SIZE`] laptops that all see each other, joined in a
//! chain by one relay laptop per room), or the benchmark's seeded random graph.

use crate::bench::graph::{Graph, Mulberry32};
use std::fmt;
use std::str::FromStr;

/// Laptops per room: a triage tent or a command post.
pub const ROOM_SIZE: usize = 8;

/// The shape of the simulated site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Rooms of up to [`ROOM_SIZE`] fully linked laptops; the first laptop of each
    /// room also links to the first of the next room (the relays).
    Rooms,
    /// The benchmark's random connected graph of mean degree 4.
    Random,
    /// Each laptop links only to the next: the longest possible relay chain.
    Line,
}

impl FromStr for Topology {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rooms" => Ok(Topology::Rooms),
            "random" => Ok(Topology::Random),
            "line" => Ok(Topology::Line),
            _ => Err(format!("{s:?} is not a topology: rooms, random or line")),
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topology::Rooms => "rooms",
            Topology::Random => "random",
            Topology::Line => "line",
        })
    }
}

impl Topology {
    /// Neighbour lists of `n` nodes (symmetric, no self links, connected).
    pub fn links(self, n: usize, seed: u32) -> Vec<Vec<usize>> {
        let mut adj = vec![Vec::new(); n];
        let mut link = |a: usize, b: usize| {
            if a != b && !adj[a].contains(&b) {
                adj[a].push(b);
                adj[b].push(a);
            }
        };
        match self {
            Topology::Line => (1..n).for_each(|i| link(i - 1, i)),
            Topology::Rooms => {
                for start in (0..n).step_by(ROOM_SIZE) {
                    let end = (start + ROOM_SIZE).min(n);
                    for a in start..end {
                        for b in a + 1..end {
                            link(a, b);
                        }
                    }
                    if start > 0 {
                        link(start - ROOM_SIZE, start);
                    }
                }
            }
            Topology::Random => {
                let graph = Graph::build(&mut Mulberry32::new(seed), n, 4.min(n - 1));
                for a in 0..n {
                    for &b in graph.neighbours(a) {
                        link(a, b);
                    }
                }
            }
        }
        adj
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(adj: &[Vec<usize>]) -> bool {
        let mut seen = vec![false; adj.len()];
        let mut stack = vec![0];
        seen[0] = true;
        while let Some(a) = stack.pop() {
            for &b in &adj[a] {
                if !seen[b] {
                    seen[b] = true;
                    stack.push(b);
                }
            }
        }
        seen.iter().all(|s| *s)
    }

    #[test]
    fn every_topology_is_connected_and_symmetric() {
        for t in [Topology::Rooms, Topology::Random, Topology::Line] {
            for n in [2, 9, 50] {
                let adj = t.links(n, 1);
                assert!(connected(&adj), "{t} n={n}");
                for (a, ns) in adj.iter().enumerate() {
                    assert!(ns.iter().all(|&b| adj[b].contains(&a) && b != a));
                }
            }
        }
    }

    #[test]
    fn rooms_are_cliques_chained_by_their_first_laptops() {
        let adj = Topology::Rooms.links(20, 1);
        assert_eq!(adj[1].len(), 7, "a laptop sees its whole room");
        assert_eq!(
            adj[8].len(),
            7 + 2,
            "a relay also sees the rooms either side"
        );
        assert!(adj[0].contains(&8) && adj[8].contains(&16));
        assert!(!adj[1].contains(&9), "rooms meet only through relays");
        assert_eq!("rooms".parse::<Topology>().unwrap(), Topology::Rooms);
        assert!("mesh".parse::<Topology>().is_err());
    }
}
