-- The demo shop: products and order lines (a composite key), captured by one connector (tienda.json). Safe to
-- run twice.
CREATE TABLE IF NOT EXISTS public.productos (
    id          int PRIMARY KEY,
    nombre      text NOT NULL,
    precio      numeric(10,2),
    actualizado timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS public.pedidos (
    pedido   int,
    linea    int,
    producto int,
    cantidad int NOT NULL,
    PRIMARY KEY (pedido, linea)
);
INSERT INTO public.productos (id, nombre, precio, actualizado) VALUES
    (1, 'Café',       3.50, '2026-11-24 08:00:00+00'),
    (2, 'Té verde',   2.75, '2026-11-24 08:00:00+00'),
    (3, 'Galletas',   1.99, '2026-11-24 08:00:00+00'),
    (4, 'Chocolate',  NULL, '2026-11-24 08:00:00+00')
ON CONFLICT (id) DO NOTHING;
INSERT INTO public.pedidos (pedido, linea, producto, cantidad) VALUES
    (1, 1, 1, 2), (1, 2, 3, 1), (2, 1, 2, 4)
ON CONFLICT (pedido, linea) DO NOTHING;
