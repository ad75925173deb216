// Exact linear assignment (min-cost perfect matching on a dense n x n cost matrix): shortest augmenting
// paths with dual potentials, the Jonker-Volgenant scheme without its initialisation heuristics. O(n^3).

/// The permutation p minimising sum_i cost[i][p[i]] (rows: data items, columns: noise items).
/// `cost` is row-major n x n. Ties are broken deterministically (lowest column index first).
public func linearAssignment(cost: [Double], count n: Int) -> [Int] {
    precondition(cost.count == n * n, "linearAssignment: \(cost.count) costs for a \(n) x \(n) problem")
    if n == 0 { return [] }
    // 1-based arrays with a virtual column 0, as in the classic formulation.
    var u = [Double](repeating: 0, count: n + 1)        // row potentials
    var v = [Double](repeating: 0, count: n + 1)        // column potentials
    var rowOfColumn = [Int](repeating: 0, count: n + 1) // 0 = free
    var way = [Int](repeating: 0, count: n + 1)
    var minSlack = [Double](repeating: 0, count: n + 1)
    var used = [Bool](repeating: false, count: n + 1)
    cost.withUnsafeBufferPointer { c in
        for row in 1...n {
            rowOfColumn[0] = row
            var j0 = 0
            for j in 0...n { minSlack[j] = .infinity; used[j] = false }
            // Grow a shortest-path tree from `row` until it reaches a free column.
            repeat {
                used[j0] = true
                let i0 = rowOfColumn[j0], base = (i0 - 1) * n - 1, ui = u[i0]
                var delta = Double.infinity, j1 = 0
                for j in 1...n where !used[j] {
                    let slack = c[base + j] - ui - v[j]
                    if slack < minSlack[j] { minSlack[j] = slack; way[j] = j0 }
                    if minSlack[j] < delta { delta = minSlack[j]; j1 = j }
                }
                for j in 0...n {
                    if used[j] { u[rowOfColumn[j]] += delta; v[j] -= delta } else { minSlack[j] -= delta }
                }
                j0 = j1
            } while rowOfColumn[j0] != 0
            // Flip the matching along the path back to the root.
            repeat {
                let j1 = way[j0]
                rowOfColumn[j0] = rowOfColumn[j1]
                j0 = j1
            } while j0 != 0
        }
    }
    var assignment = [Int](repeating: 0, count: n)
    for j in 1...n { assignment[rowOfColumn[j] - 1] = j - 1 }
    return assignment
}

/// Total cost of an assignment.
public func assignmentCost(_ cost: [Double], count n: Int, _ assignment: [Int]) -> Double {
    assignment.enumerated().reduce(0) { $0 + cost[$1.offset * n + $1.element] }
}
