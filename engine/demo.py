"""A short engine demo: the seed notebook's first cells, run on the engine."""
from __future__ import annotations

from . import arange, ones, rand, randn, zeros


def main() -> None:
    a = randn(3, 4, requires_grad=True)
    b = zeros(3, 4, requires_grad=True)
    c = a + b
    d = c.sum()
    d.backward()
    print("c =", c)
    print("a.grad =", a.grad)
    print("c.grad_fn =", c.grad_fn, c.grad_fn.next_functions)
    x = ones(1)
    w = rand(1, requires_grad=True)
    z = w * x + rand(1, requires_grad=True)
    z.backward()
    print("w.grad =", w.grad)
    x = arange(0, 3, dtype=None, requires_grad=False).float().requires_grad_()
    y = x**2 + x * 2
    y.sum().backward()
    print("d(x**2 + 2x)/dx =", x.grad)


if __name__ == "__main__":
    main()
