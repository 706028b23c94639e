-- The prototype's demo table, with a few rows. Safe to run twice.
CREATE TABLE IF NOT EXISTS public.clientes (
    id     serial PRIMARY KEY,
    nombre text,
    email  text
);
INSERT INTO public.clientes (id, nombre, email) VALUES
    (1, 'Ana García',    'ana@example.com'),
    (2, 'Bruno Díaz',    'bruno@example.com'),
    (3, 'Carla Núñez',   'carla@example.com'),
    (4, 'Diego Pérez',   NULL),
    (5, 'Elena Ruiz',    '')
ON CONFLICT (id) DO NOTHING;
SELECT setval('public.clientes_id_seq', GREATEST((SELECT max(id) FROM public.clientes), 1));
