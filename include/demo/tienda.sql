-- The demo shop: products, order lines (a composite key) and categories (a key under an ICU collation), captured
-- by one connector (tienda.json). Safe to run twice.
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
-- Categories keyed by their name under a Spanish ICU collation, as most production databases key text under a
-- linguistic one: destiny.csv follows ORDER BY's order (Árboles, azúcar, café, Chocolates, ..., Ñoquis, Zumos).
CREATE TABLE IF NOT EXISTS public.categorias (
    nombre      text COLLATE "es-x-icu" PRIMARY KEY,
    descripcion text
);
INSERT INTO public.categorias (nombre, descripcion) VALUES
    ('café', 'Café y té'), ('Chocolates', NULL), ('azúcar', 'Dulces'), ('Árboles', 'Jardín'),
    ('Ñoquis', 'Pasta fresca'), ('nueces', 'Frutos secos'), ('Zumos', 'Bebidas')
ON CONFLICT (nombre) DO NOTHING;
INSERT INTO public.productos (id, nombre, precio, actualizado) VALUES
    (1, 'Café',       3.50, '2026-11-24 08:00:00+00'),
    (2, 'Té verde',   2.75, '2026-11-24 08:00:00+00'),
    (3, 'Galletas',   1.99, '2026-11-24 08:00:00+00'),
    (4, 'Chocolate',  NULL, '2026-11-24 08:00:00+00')
ON CONFLICT (id) DO NOTHING;
INSERT INTO public.pedidos (pedido, linea, producto, cantidad) VALUES
    (1, 1, 1, 2), (1, 2, 3, 1), (2, 1, 2, 4)
ON CONFLICT (pedido, linea) DO NOTHING;
